"""End-to-end fixtures: real ``sanic server:app`` hosts on a fresh station database, the LML fake, the auth issuer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest

from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from devtools.processes import ServerProcess, server_env
from devtools.seed import seed_demo
from tests.conftest import SCHEMAS, create_station_database, drop_database
from tests.helpers import active_ids, expected_tracks, transient_ids, warm_misses
from tests.openapi_check import assert_conforms

Host = Callable[..., ServerProcess]


def host_env(database_url: str, lml_url: str | None, issuer: AuthIssuer, **extra: str) -> dict[str, str]:
    """A host's environment (see :func:`server_env`) that trusts the test auth issuer."""
    return server_env(
        database_url,
        lml_url,
        BETTER_AUTH_ISSUER=issuer.issuer,
        BETTER_AUTH_AUDIENCE=issuer.audience,
        BETTER_AUTH_JWKS_URL=issuer.jwks_url,
        **extra,
    )


def station_host(env: dict[str, str], workers: int, issuer: AuthIssuer, **options: Any) -> ServerProcess:
    """A host (not started) whose requests carry a DJ's token and whose every answer a test reads must be
    one the OpenAPI document describes."""
    host = ServerProcess(env, workers, **options)
    host.headers["Authorization"] = f"Bearer {issuer.mint('dj', ttl_s=3600)}"
    host.check = assert_conforms
    return host


@pytest.fixture
async def station_url(pg_server_url: str, small_catalog: DemoCatalog) -> AsyncIterator[str]:
    """A fresh station database (fixture, migrated) seeded with the small catalog; dropped afterwards."""
    url = await create_station_database(pg_server_url)
    conn = await asyncpg.connect(url)
    try:
        await seed_demo(conn, small_catalog, SCHEMAS, only_if_empty=False)
    finally:
        await conn.close()
    try:
        yield url
    finally:
        await drop_database(pg_server_url, url)


@pytest.fixture
def fake(small_catalog: DemoCatalog) -> Iterator[LmlFake]:
    """A fresh LML fake at 5 ms (tests that need a slower LML call set_latency)."""
    with LmlFake(small_catalog, latency_ms=5.0, jitter_ms=1.0) as lml:
        yield lml


@pytest.fixture
def hosts(station_url: str, fake: LmlFake, issuer: AuthIssuer) -> Iterator[Host]:
    """Start hosts on the station database; every host is stopped and its log deleted afterwards."""
    started: list[ServerProcess] = []

    def start(workers: int = 2, *, database_url: str | None = None, wait: bool = True, **env: str) -> ServerProcess:
        base = host_env(database_url or station_url, fake.url, issuer, LML_CLIENT_RATE_PER_MIN="100000")
        host = station_host({**base, **env}, workers, issuer, name=f"host{len(started)}")
        started.append(host.start())
        if wait:
            host.wait_serving()
        return host

    try:
        yield start
    finally:
        for host in started:
            host.close()


def every_worker_answers(host: ServerProcess, rid: int, expected: list[dict[str, Any]]) -> bool:
    answers = host.per_worker(f"/library/rotation/{rid}/tracks")
    return len(answers) == host.workers and all(r.status == 200 and r.json() == expected for r in answers.values())


def wait_every_worker_holds_every_answer(host: ServerProcess, timeout: float = 15.0) -> None:
    """Every worker's row cache holds exactly the stored answers (before any request could fill it up)."""
    deadline = time.monotonic() + timeout
    while True:
        held = {
            worker: (body["caches"]["rotation"]["size"], (body["warm"]["stored"] or {}).get("rows"))
            for worker, body in ((w, r.json()) for w, r in host.per_worker("/health/ready").items())
        }
        if len(held) == max(host.workers, 1) and all(size == rows for size, rows in held.values()):
            return
        assert time.monotonic() < deadline, f"worker -> (cached rows, stored rows): {held}"
        time.sleep(0.1)


def assert_warm(host: ServerProcess, catalog: DemoCatalog, fake: LmlFake) -> None:
    """Every worker holds every stored answer and answers every non-transient active row as designed, without
    LML."""
    wait_every_worker_holds_every_answer(host)
    fake.reset()
    for rid in active_ids(catalog):
        if rid not in transient_ids(catalog):
            assert every_worker_answers(host, rid, expected_tracks(catalog, rid)), rid
    assert warm_misses(fake.stats(), catalog) == ([], [])
