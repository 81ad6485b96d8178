"""A new operator's path on a station database (issue 8), and the warm path's resilience on one host (issue 9).

Real ``python -m backend migrate`` and ``sanic server:app --workers 2`` processes on a database
built by the station fixture, with plain-SQL changes made the way any station writer makes them.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable

import asyncpg
import pytest

from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from devtools.processes import WARM, ServerProcess
from devtools.seed import seed_demo
from tests.conftest import SCHEMAS, create_station_database, drop_database
from tests.e2e.conftest import Host, assert_warm, every_worker_answers, host_env
from tests.helpers import active_ids, expected_tracks, row_id, transient_ids
from tests.integration.test_schema import station_shape

pytestmark = [pytest.mark.pg, pytest.mark.e2e]

WEB_APP = "https://dj.wxyc.org"


def seconds_until(condition: Callable[[], bool], timeout: float) -> float:
    """How long until ``condition()`` holds (polled); fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition never held"
        time.sleep(0.01)
    return time.monotonic() - started


class TestDropIn:
    async def test_migrate_then_serve_on_a_station_database(
        self, pg_server_url: str, small_catalog: DemoCatalog, fake: LmlFake, hosts: Host, issuer: AuthIssuer
    ) -> None:
        """An operator migrates a station database and starts 2 workers: no station object changes, every
        picker answer is as designed, every worker is warm, the web app's browser sequence works, and
        plain-SQL changes of text, links, release ids and identity ids reach every worker within 1 s."""
        url = await create_station_database(pg_server_url, migrated=False)
        try:
            conn = await asyncpg.connect(url)
            await seed_demo(conn, small_catalog, SCHEMAS, only_if_empty=False)
            before = await station_shape(url, SCHEMAS.station)
            migrate = subprocess.run(
                [sys.executable, "-m", "backend", "migrate"],
                env={**os.environ, "DATABASE_URL": url},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert migrate.returncode == 0, migrate.stderr
            assert await station_shape(url, SCHEMAS.station) == before
            host = hosts(2, database_url=url, FRONTEND_SOURCE=WEB_APP)
            host.wait_for_log(WARM + r"done: worker=main ", timeout=120)
            assert_warm(host, small_catalog, fake)

            # The web app's browser: a preflight (no token), then the GET with the Bearer token.
            preflight = host.http.options(
                "/library/rotation/1/tracks",
                headers={"Origin": WEB_APP, "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": "authorization, x-request-id", "Authorization": ""},
            )  # fmt: skip
            assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == WEB_APP
            got = host.get("/library/rotation", headers={"Origin": WEB_APP, "X-Request-Id": "web-1"})
            assert got.status_code == 200 and got.headers["access-control-allow-origin"] == WEB_APP
            assert got.headers["x-request-id"] == "web-1"
            refused = host.get("/library/rotation", headers={"Authorization": "", "X-Request-Id": "web-2"})
            assert refused.status_code == 401
            host.wait_for_log(r"request refused path=/library/rotation status=401 .*request_id=web-2")

            await self._changes_reach_every_worker_within_a_second(conn, host, small_catalog)
            await conn.close()
        finally:
            await drop_database(pg_server_url, url)

    @staticmethod
    async def _changes_reach_every_worker_within_a_second(
        conn: asyncpg.Connection, host: ServerProcess, catalog: DemoCatalog
    ) -> None:
        inline = row_id(catalog, "lml_inline")
        tier2 = row_id(catalog, "tier2")
        target = catalog.rotation[row_id(catalog, "lml_inline", 1) - 1]
        release_row = row_id(catalog, "tier1")
        release_id = catalog.rotation[release_row - 1].discogs_release_id
        tier2_album = catalog.rotation[tier2 - 1].album_index
        assert release_id is not None and tier2_album is not None
        tier2_library = await conn.fetchval("SELECT album_id FROM wxyc_schema.rotation WHERE id = $1", tier2)
        changes = [
            ("text", inline, "UPDATE wxyc_schema.rotation SET artist_name = $2, album_title = $3 WHERE id = $1",
             (target.artist_name, target.album_title), row_id(catalog, "lml_inline", 1)),
            ("release id", inline, "UPDATE wxyc_schema.rotation SET discogs_release_id = $2 WHERE id = $1",
             (release_id,), release_row),
            ("link", inline, "UPDATE wxyc_schema.rotation SET discogs_release_id = NULL, album_id = $2 WHERE id = $1",
             (tier2_library,), tier2),
            ("identity id", tier2,
             "UPDATE wxyc_schema.library_identity SET discogs_release_id = $2 WHERE library_id = $1",
             (release_id,), release_row),
        ]  # fmt: skip
        for name, rid, sql, args, looks_like in changes:
            key = tier2_library if name == "identity id" else rid
            expected = expected_tracks(catalog, looks_like)
            assert not every_worker_answers(host, rid, expected), name
            await conn.execute(sql, key, *args)
            elapsed = seconds_until(functools.partial(every_worker_answers, host, rid, expected), timeout=10)
            assert elapsed <= 1.0, f"{name} change took {elapsed:.2f}s to reach every worker"


class TestWarmPath:
    async def test_unknown_ids_never_displace_warm_rows(
        self, hosts: Host, fake: LmlFake, small_catalog: DemoCatalog
    ) -> None:
        """3,000 distinct unknown ids, then every active row still answers from memory with no LML call."""
        host = hosts(2)
        host.wait_for_log(WARM + r"done: worker=main ", timeout=120)
        for rid in range(1_000_000, 1_003_000):
            assert host.get(f"/library/rotation/{rid}/tracks").json() == []
        assert_warm(host, small_catalog, fake)
        for body in (r.json() for r in host.per_worker("/health/ready").values()):
            cold = body["caches"]["cold"]
            assert cold["size"] <= cold["maxsize"] == 1000 and body["caches"]["rotation"]["evictions"] == 0

    async def test_a_listener_reconnect_rechecks_instead_of_dropping_everything(
        self, hosts: Host, fake: LmlFake, small_catalog: DemoCatalog, station_url: str
    ) -> None:
        """Killing every LISTEN connection: workers reconnect, keep what is unchanged (no LML call) and
        drop only the row that changed while they were deaf."""
        host = hosts(2)
        host.wait_for_log(WARM + r"done: worker=main ", timeout=120)
        assert_warm(host, small_catalog, fake)
        changed = row_id(small_catalog, "lml_inline")
        tier1 = row_id(small_catalog, "tier1")
        release_id = small_catalog.rotation[tier1 - 1].discogs_release_id
        mark = host.mark()
        conn = await asyncpg.connect(station_url)
        try:
            listeners = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            )
            assert len(listeners) >= 3  # two workers and the walker
            # Deaf listeners: the change below is never notified to them.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", [r["pid"] for r in listeners]
            )
            await conn.execute(
                "UPDATE wxyc_schema.rotation SET discogs_release_id = $2 WHERE id = $1", changed, release_id
            )
        finally:
            await conn.close()
        host.wait_for_log(WARM + r"rechecked: worker=Sanic-Server-\S+ cached=\d+ dropped=\d", 2, since=mark)
        assert (
            seconds_until(lambda: every_worker_answers(host, changed, expected_tracks(small_catalog, tier1)), 10) < 10
        )
        fake.reset()
        for rid in active_ids(small_catalog):
            if rid not in transient_ids(small_catalog) and rid != changed:
                assert every_worker_answers(host, rid, expected_tracks(small_catalog, rid)), rid
        assert fake.stats()["counts"]["lookup"] == 0


def test_an_incompatible_station_schema_stops_the_server_with_one_line(station_url: str, issuer: AuthIssuer) -> None:
    """The main process checks the station schema at start and exits 2 naming what is missing."""
    import asyncio

    async def drop_column() -> None:
        conn = await asyncpg.connect(station_url)
        try:
            await conn.execute("ALTER TABLE wxyc_schema.rotation DROP COLUMN tracklist_lookup_attempted_at")
        finally:
            await conn.close()

    asyncio.run(drop_column())
    host = ServerProcess(host_env(station_url, None, issuer), 2).start()
    try:
        assert host.wait(30) == 2
        named = host.lines(r"missing column rotation\.tracklist_lookup_attempted_at")
        assert len(named) == 1 and "Traceback" not in host.log.text()
    finally:
        host.close()
