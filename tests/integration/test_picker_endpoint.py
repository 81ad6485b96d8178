"""GET /library/rotation/<id>/tracks end to end: real PostgreSQL, real HTTP to the LML fake and the auth issuer.

Each test pins one row of the status matrix (upstream-reference.md §3.5 with this project's
corrections: strict ids, 401/403 from LML is a 502, malformed LML bodies are 502 and never cached).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from backend.context import App
from backend.services.lookup_coordinator import lookup_key
from devtools import demo_catalog as dc
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from tests.conftest import served
from tests.helpers import expected_tracks, row_id

pytestmark = pytest.mark.pg

MakeApp = Callable[..., App]

# A DJ's token for every request of this module (set per test by the autouse fixture below).
HEADERS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _as_a_dj(dj_headers: dict[str, str]) -> None:
    HEADERS.clear()
    HEADERS.update(dj_headers)


async def get(app: App, path: str) -> tuple[int, Any]:
    _, response = await app.asgi_client.get(path, headers=HEADERS)
    return response.status_code, response.json


def lml_calls(fake: LmlFake) -> int:
    return int(fake.stats()["counts"]["lookup"]) + int(fake.stats()["counts"]["release"])


async def stamp_of(conn: asyncpg.Connection, rotation_id: int) -> object:
    return await conn.fetchval(
        "SELECT tracklist_lookup_attempted_at FROM wxyc_schema.rotation WHERE id = $1", rotation_id
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def expected_inline(catalog: DemoCatalog, rotation_id: int) -> list[dict[str, Any]]:
    row = catalog.rotation[rotation_id - 1]
    fixture = catalog.lookups[
        lookup_key(None if dc.is_various_artists_name(row.artist_name) else row.artist_name, row.album_title)
    ]
    assert fixture.tracklist is not None
    return [
        {
            "position": t.position,
            "title": t.title,
            "duration": t.duration,
            "artists": list(t.artists) or [row.artist_name],
        }
        for t in fixture.tracklist
    ]


def expected_release(catalog: DemoCatalog, release_id: int) -> list[dict[str, Any]]:
    release = catalog.releases[release_id]
    return [
        {
            "position": t.position,
            "title": t.title,
            "duration": t.duration,
            "artists": list(t.artists) or [release.artist],
        }
        for t in release.tracklist
    ]


class TestValidation:
    @pytest.mark.parametrize("raw", ["abc", "0", "-1", "12abc", "7.9", "2147483648", "99999999999999999999"])
    async def test_bad_id_is_400_with_message(self, make_app: MakeApp, seeded: Any, raw: str) -> None:
        """Only digits in 1..2147483647 are accepted; everything else is a JSON 400, never a 500."""
        status, body = await get(make_app(), f"/library/rotation/{raw}/tracks")
        assert status == 400
        assert body == {"message": "rotation_id must be an integer between 1 and 2147483647"}

    async def test_unknown_route_and_wrong_method_answer_json(self, make_app: MakeApp, seeded: Any) -> None:
        """404 and 405 carry a JSON message like every other error."""
        app = make_app()
        status, body = await get(app, "/nope")
        assert status == 404 and "message" in body
        _, response = await app.asgi_client.post("/library/rotation/1/tracks")
        assert response.status_code == 405 and "message" in response.json


class TestResolvedOutcomes:
    async def test_unknown_id_is_empty(self, make_app: MakeApp, seeded: Any, lml_fake: LmlFake) -> None:
        """A row that does not exist answers 200 [] without asking LML."""
        assert await get(make_app(), "/library/rotation/2147483647/tracks") == (200, [])
        assert lml_calls(lml_fake) == 0

    async def test_tier1_row_serves_the_release_then_caches_it(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A stored release id fetches the release once; the second open makes no LML call."""
        rid = row_id(catalog, dc.TIER1)
        release_id = catalog.rotation[rid - 1].discogs_release_id
        assert release_id is not None
        app = make_app()
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, expected_release(catalog, release_id))
        assert lml_fake.stats()["counts"]["lookup"] == 0 and lml_fake.stats()["counts"]["release"] == 1
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, expected_release(catalog, release_id))
        assert lml_fake.stats()["counts"]["release"] == 1

    async def test_tier2_row_uses_the_identity_bridge(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A linked album's identity release id is used without a lookup."""
        rid = row_id(catalog, dc.TIER2)
        status, body = await get(make_app(), f"/library/rotation/{rid}/tracks")
        assert status == 200 and body
        assert lml_fake.stats()["counts"]["lookup"] == 0

    async def test_killed_row_resolves_like_an_active_one(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog
    ) -> None:
        """The tracks endpoint does not apply the active predicate (a picker may be open on it)."""
        rid = row_id(catalog, dc.LML_INLINE, active=False)
        assert await get(make_app(), f"/library/rotation/{rid}/tracks") == (200, expected_inline(catalog, rid))

    async def test_inline_tracklist_is_served_without_release_fetch(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A direct match carrying tracks answers from the lookup alone, then from cache."""
        rid = row_id(catalog, dc.LML_INLINE)
        app = make_app()
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, expected_inline(catalog, rid))
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, expected_inline(catalog, rid))
        assert lml_fake.stats()["counts"] == {**lml_fake.stats()["counts"], "lookup": 1, "release": 0}

    async def test_lookup_then_release_fetch(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A direct match without tracks is followed by the release fetch."""
        rid = row_id(catalog, dc.LML_RELEASE)
        status, body = await get(make_app(), f"/library/rotation/{rid}/tracks")
        assert status == 200 and body
        counts = lml_fake.stats()["counts"]
        assert (counts["lookup"], counts["release"]) == (1, 1)

    async def test_musicbrainz_rescue_serves_inline_tracks(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog
    ) -> None:
        """release_id 0 with a tracklist answers the tracklist."""
        rid = row_id(catalog, dc.MB_RESCUE)
        assert await get(make_app(), f"/library/rotation/{rid}/tracks") == (200, expected_inline(catalog, rid))

    async def test_various_artists_row_is_looked_up_by_album_only(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A V/A row's lookup carries no artist, and its tracks keep per-track artists."""
        rid = row_id(catalog, dc.VARIOUS_ARTISTS)
        status, body = await get(make_app(), f"/library/rotation/{rid}/tracks")
        assert status == 200 and body
        assert lml_fake.stats()["lookup_keys"] == [lookup_key(None, catalog.rotation[rid - 1].album_title)]

    @pytest.mark.parametrize("outcome", [dc.FALLBACK, dc.NO_MATCH, dc.SENTINEL_NO_TRACKS])
    async def test_confirmed_miss_is_empty_cached_and_stamped(
        self,
        make_app: MakeApp,
        seeded: asyncpg.Connection,
        catalog: DemoCatalog,
        lml_fake: LmlFake,
        outcome: str,
    ) -> None:
        """Untrusted or empty matches answer [] once from LML, then from the cache; the row is stamped."""
        rid = row_id(catalog, outcome)
        app = make_app()
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert lml_fake.stats()["counts"]["lookup"] == 1
        assert await stamp_of(seeded, rid) is not None

    async def test_a_miss_survives_a_restart(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A new process (empty caches) answers a confirmed miss from the stored answer, without LML."""
        rid = row_id(catalog, dc.NO_MATCH)
        await get(make_app(), f"/library/rotation/{rid}/tracks")
        assert await get(make_app(), f"/library/rotation/{rid}/tracks") == (200, [])
        assert lml_fake.stats()["counts"]["lookup"] == 1

    async def test_a_stamp_alone_still_skips_lml(
        self, make_app: MakeApp, seeded: asyncpg.Connection, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A stamp this service has no answer for (e.g. written by the TypeScript backend) is honoured."""
        rid = row_id(catalog, dc.NO_MATCH)
        await seeded.execute("UPDATE wxyc_schema.rotation SET tracklist_lookup_attempted_at = now() WHERE id = $1", rid)
        assert await get(make_app(), f"/library/rotation/{rid}/tracks") == (200, [])
        assert lml_calls(lml_fake) == 0

    async def test_a_stamp_written_for_other_text_no_longer_counts(
        self, make_app: MakeApp, seeded: asyncpg.Connection, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """Text corrected by plain SQL (the stamp left as it was) is looked up again, and matches."""
        miss, hit = row_id(catalog, dc.NO_MATCH), row_id(catalog, dc.LML_INLINE)
        await get(make_app(), f"/library/rotation/{miss}/tracks")
        assert await stamp_of(seeded, miss) is not None
        good = catalog.rotation[hit - 1]
        await seeded.execute(
            "UPDATE wxyc_schema.rotation SET artist_name = $2, album_title = $3 WHERE id = $1",
            miss,
            good.artist_name,
            good.album_title,
        )
        status, body = await get(make_app(), f"/library/rotation/{miss}/tracks")
        assert status == 200 and [t["title"] for t in body] == [t["title"] for t in expected_inline(catalog, hit)]
        assert lml_fake.stats()["counts"]["lookup"] == 2
        assert await stamp_of(seeded, miss) is None

    @pytest.mark.parametrize("outcome", [dc.NO_TEXT, dc.STAMP_FRESH])
    async def test_rows_that_never_reach_lml(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake, outcome: str
    ) -> None:
        """Rows without text, or with a fresh stamp, answer [] with no LML call."""
        assert await get(make_app(), f"/library/rotation/{row_id(catalog, outcome)}/tracks") == (200, [])
        assert lml_calls(lml_fake) == 0

    @pytest.mark.parametrize("outcome", [dc.LML_TIMEOUT, dc.LML_DEGRADED])
    async def test_timeout_or_degraded_answer_is_transient(
        self,
        make_app: MakeApp,
        seeded: asyncpg.Connection,
        catalog: DemoCatalog,
        lml_fake: LmlFake,
        outcome: str,
    ) -> None:
        """timeout/degraded with no results answers [] but is neither cached nor stamped."""
        rid = row_id(catalog, outcome)
        app = make_app()
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert lml_fake.stats()["counts"]["lookup"] == 2
        assert await stamp_of(seeded, rid) is None


class TestLmlFailures:
    @pytest.mark.parametrize("kind", ["500", "503", "timeout", "garbage", "malformed", "401"])
    async def test_failed_lookup_degrades_to_empty_and_is_not_cached(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake, kind: str
    ) -> None:
        """Any lookup failure answers [] and the next open asks LML again (and succeeds)."""
        rid = row_id(catalog, dc.LML_INLINE)
        app = make_app(lml_lookup_timeout_ms=300)
        lml_fake.add_fault("/api/v1/lookup", kind, count=1)
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, expected_inline(catalog, rid))

    async def test_release_404_is_empty_and_negative_cached(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """A release LML does not have answers [] and is not fetched again for 10 minutes."""
        rid = row_id(catalog, dc.RELEASE_404)
        app = make_app()
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, [])
        assert lml_fake.stats()["counts"]["release"] == 1

    @pytest.mark.parametrize(
        ("kind", "status", "message"),
        [
            pytest.param("500", 502, "LML responded with 500: Internal Server Error", id="5xx"),
            pytest.param("503", 502, "LML responded with 503: Service Unavailable", id="503"),
            pytest.param("timeout", 504, "LML request timed out", id="timeout"),
            pytest.param("401", 502, None, id="401-is-our-fault"),
            pytest.param("403", 502, None, id="403-is-our-fault"),
            pytest.param("422", 422, None, id="other-4xx-passes-through"),
            pytest.param("garbage", 502, None, id="non-json-body"),
            pytest.param("malformed", 502, None, id="wrong-shape-body"),
            pytest.param("disconnect", 502, None, id="connection-dropped"),
        ],
    )
    async def test_release_fetch_failure_status_and_no_caching(
        self,
        make_app: MakeApp,
        seeded: Any,
        catalog: DemoCatalog,
        lml_fake: LmlFake,
        kind: str,
        status: int,
        message: str | None,
    ) -> None:
        """Release fetch failures surface with the matrix's status and a message; a retry succeeds."""
        rid = row_id(catalog, dc.TIER1)
        release_id = catalog.rotation[rid - 1].discogs_release_id
        assert release_id is not None
        app = make_app(lml_release_timeout_ms=300)
        lml_fake.add_fault("/api/v1/discogs/release", kind, count=1)
        got_status, body = await get(app, f"/library/rotation/{rid}/tracks")
        assert got_status == status
        assert isinstance(body, dict) and body["message"]
        if message is not None:
            assert body["message"] == message
        assert await get(app, f"/library/rotation/{rid}/tracks") == (200, expected_release(catalog, release_id))

    async def test_network_failure_is_502(self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog) -> None:
        """LML unreachable on a release fetch is a 502 naming the failure."""
        app = make_app(lml_url=f"http://127.0.0.1:{closed_port()}")
        status, body = await get(app, f"/library/rotation/{row_id(catalog, dc.TIER1)}/tracks")
        assert status == 502 and body["message"].startswith("LML request failed")

    async def test_unconfigured_lml(self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog) -> None:
        """Without LML, tier-3 rows answer [] and stored ids answer 503 naming the setting."""
        app = make_app(lml_url=None)
        assert await get(app, f"/library/rotation/{row_id(catalog, dc.LML_INLINE)}/tracks") == (200, [])
        assert await get(app, f"/library/rotation/{row_id(catalog, dc.TIER1)}/tracks") == (
            503,
            {"message": "LIBRARY_METADATA_URL is not configured"},
        )

    async def test_bearer_token_is_sent(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, lml_fake: LmlFake
    ) -> None:
        """With LML_API_KEY set the fake sees the Authorization header."""
        from backend.config import Secret

        app = make_app(lml_api_key=Secret("k"))
        await get(app, f"/library/rotation/{row_id(catalog, dc.LML_INLINE)}/tracks")
        assert lml_fake.stats()["last_headers"]["authorization_present"] is True


class TestDatabaseDown:
    async def test_picker_is_503_and_readiness_unhealthy_but_liveness_ok(self, make_app: MakeApp) -> None:
        """With PostgreSQL unreachable: picker 503 JSON, /health/ready 503 unhealthy, /health 200."""
        app = make_app(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
        status, body = await get(app, "/library/rotation/1/tracks")
        assert (status, body) == (503, {"message": "database unavailable"})
        status, body = await get(app, "/health/ready")
        assert status == 503 and body["status"] == "unhealthy"
        assert body["services"]["database"] == "unavailable"
        assert await get(app, "/health") == (200, {"status": "ok"})


class TestHealth:
    async def test_ready_reports_healthy_with_caches_and_warm_state(self, make_app: MakeApp, seeded: Any) -> None:
        """Every probe ok: healthy, with cache, limiter, stored-answer and warm state for operators."""
        status, body = await get(make_app(), "/health/ready")
        assert status == 200
        assert body["status"] == "healthy"
        assert body["services"] == {"database": "ok", "schema": "ok", "lml": "ok", "auth": "jwks"}
        assert body["warm"]["walker"] is None and body["warm"]["worker"]["loaded"] is True
        assert body["warm"]["stored"] == {
            "rows": 0,
            "releases": 0,
            "retrying": 0,
            "bytes": body["warm"]["stored"]["bytes"],
        }
        assert {"rotation", "cold", "release_positive", "release_negative"} == set(body["caches"])

    async def test_ready_is_unhealthy_until_the_schema_is_migrated(self, make_app: MakeApp, pg_server_url: str) -> None:
        """A station database the service schema was never applied to: readiness 503 naming the fix."""
        from tests.conftest import create_station_database, drop_database

        url = await create_station_database(pg_server_url, migrated=False)
        try:
            app = make_app(database_url=url)
            status, body = await get(app, "/health/ready")
            assert status == 503 and body["services"]["schema"] == "pending"
            assert "python -m backend migrate" in body["schema"]
            status, body = await get(app, "/library/rotation/1/tracks")
            assert (status, body) == (503, {"message": "database unavailable"})
        finally:
            await drop_database(pg_server_url, url)

    async def test_ready_is_degraded_when_lml_is_down(self, make_app: MakeApp, seeded: Any) -> None:
        """LML unreachable makes readiness degraded, still 200."""
        status, body = await get(make_app(lml_url=f"http://127.0.0.1:{closed_port()}"), "/health/ready")
        assert status == 200 and body["status"] == "degraded" and body["services"]["lml"] == "unavailable"


class TestEarlyLml:
    async def test_early_lml_without_extended_mode_still_serves_tracks(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog
    ) -> None:
        """Against the Feb-2026 LML (no extended mode, raw_message required) a match falls back to the release."""
        with LmlFake(catalog, latency_ms=0.0, jitter_ms=0.0, legacy=True) as legacy:
            app = make_app(lml_url=legacy.url)
            rid = row_id(catalog, dc.LML_INLINE)
            status, body = await get(app, f"/library/rotation/{rid}/tracks")
            assert status == 200 and body
            counts = legacy.stats()["counts"]
            assert (counts["lookup"], counts["release"]) == (1, 1)


class TestEveryRow:
    async def test_every_row_answers_what_the_catalog_designs(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog
    ) -> None:
        """All ~350 demo rows (active and killed) answer the designed tracklist (the oracle the e2e tests use)."""
        async with served(make_app()) as client:
            for rid in range(1, len(catalog.rotation) + 1):
                response = await client.get(f"/library/rotation/{rid}/tracks", headers=HEADERS)
                assert (response.status_code, response.json()) == (200, expected_tracks(catalog, rid)), rid
