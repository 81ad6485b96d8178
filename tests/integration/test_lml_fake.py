"""The local LML fake speaks the LML contract, injects faults and counts what it served."""

from __future__ import annotations

import datetime
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.services.lookup_coordinator import lookup_key
from devtools import demo_catalog as dc
from devtools.lml_fake import FAULT_KINDS, LmlFake

TODAY = datetime.date(2026, 8, 22)
ROOT = Path(__file__).resolve().parents[2]
RESPONSE_KEYS = {
    "api_version", "results", "search_type", "song_not_found", "found_on_compilation", "context_message",
    "corrected_artist", "cache_stats", "identity", "timeout", "degraded", "degraded_reason",
}  # fmt: skip
LEGACY_RESPONSE_KEYS = {
    "results", "search_type", "song_not_found", "found_on_compilation", "context_message", "corrected_artist",
    "cache_stats",
}  # fmt: skip
EXTENDED_KEYS = {
    "discogs_artist_id", "tracklist", "genres", "styles", "label", "full_release_date", "artist_image_url",
    "profile_tokens", "writer_credits",
}  # fmt: skip
RELEASE_KEYS = {
    "release_id", "master_id", "title", "artist", "year", "label", "artist_id", "label_id", "genres", "styles",
    "tracklist", "artwork_url", "release_url", "cached", "artists", "extra_artists", "labels", "released", "videos",
}  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> dc.DemoCatalog:
    """The demo catalog for a fixed date."""
    return dc.build_demo_catalog(TODAY)


@pytest.fixture
def fake(catalog: dc.DemoCatalog) -> Iterator[LmlFake]:
    """A running fake without latency."""
    with LmlFake(catalog, latency_ms=0.0, jitter_ms=0.0) as running:
        yield running


@pytest.fixture
def client(fake: LmlFake) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the fake."""
    with httpx.Client(base_url=fake.url, timeout=5.0) as http:
        yield http


def _row(catalog: dc.DemoCatalog, outcome: str) -> dc.RotationRow:
    return catalog.rows_expecting(outcome)[0]


def _body(row: dc.RotationRow, *, extended: bool | None = True) -> dict[str, Any]:
    artist = None if dc.is_various_artists_name(row.artist_name) else row.artist_name
    body: dict[str, Any] = {"album": row.album_title, "raw_message": f"{row.artist_name} - {row.album_title}"}
    if artist is not None:
        body["artist"] = artist
    if extended is not None:
        body["extended"] = extended
    return body


def _lookup(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/lookup", json=body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


class TestLookup:
    """``POST /api/v1/lookup``."""

    def test_extended_hit_has_inline_tracklist_on_top_result_only(
        self, catalog: dc.DemoCatalog, client: httpx.Client
    ) -> None:
        """An extended direct hit carries every response key and the tracklist on results[0]."""
        row = _row(catalog, dc.LML_INLINE)
        body = _lookup(client, _body(row))
        assert set(body) == RESPONSE_KEYS
        assert body["search_type"] == "direct" and body["timeout"] is False and body["api_version"] is None
        assert row.lml_key is not None
        fixture = catalog.lookups[row.lml_key]
        artwork = body["results"][0]["artwork"]
        assert EXTENDED_KEYS <= set(artwork)
        assert artwork["tracklist"] == [
            {"position": t.position, "title": t.title, "duration": t.duration, "artists": list(t.artists)}
            for t in fixture.tracklist or ()
        ]
        assert artwork["release_url"] == f"https://www.discogs.com/release/{artwork['release_id']}"
        item = body["results"][0]["library_item"]
        assert item["library_url"].endswith(f"/dashboard/album/legacy/{item['id']}") and item["call_number"]
        for other in body["results"][1:]:
            assert all(other["artwork"][k] is None for k in EXTENDED_KEYS)

    def test_not_extended_has_null_extended_fields(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """Without ``extended`` the extended keys are present but null."""
        for extended in (None, False):
            body = _lookup(client, _body(_row(catalog, dc.LML_INLINE), extended=extended))
            artwork = body["results"][0]["artwork"]
            assert all(artwork[k] is None for k in EXTENDED_KEYS)

    def test_release_row_has_no_inline_tracklist(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """A release-path hit answers a positive id and no tracklist even when extended."""
        artwork = _lookup(client, _body(_row(catalog, dc.LML_RELEASE)))["results"][0]["artwork"]
        assert artwork["release_id"] > 0 and artwork["tracklist"] is None

    def test_sentinel_rows(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """MB rescue answers the 0 sentinel with tracks; the plain sentinel has none."""
        rescue = _lookup(client, _body(_row(catalog, dc.MB_RESCUE)))["results"][0]["artwork"]
        assert rescue["release_id"] == 0 and rescue["release_url"] == "" and rescue["tracklist"]
        bare = _lookup(client, _body(_row(catalog, dc.SENTINEL_NO_TRACKS)))["results"][0]["artwork"]
        assert bare["release_id"] == 0 and bare["tracklist"] is None

    def test_fallback_row(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """A fallback row answers results with search_type 'fallback'."""
        body = _lookup(client, _body(_row(catalog, dc.FALLBACK)))
        assert body["search_type"] == "fallback" and body["results"] and body["song_not_found"] is True

    def test_miss_shape(self, client: httpx.Client) -> None:
        """An unknown pair answers 200 with empty results and search_type 'none'."""
        body = _lookup(client, {"artist": "Nobody Here", "album": "Nothing At All"})
        assert set(body) == RESPONSE_KEYS
        assert body["results"] == [] and body["search_type"] == "none"
        assert body["timeout"] is False and body["degraded"] is False and body["cache_stats"]["pg_misses"] == 2

    def test_key_is_normalised(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """Case and whitespace differences still hit the fixture."""
        row = _row(catalog, dc.LML_INLINE)
        body = _lookup(client, {"artist": f"  {str(row.artist_name).upper()} ", "album": str(row.album_title).lower()})
        assert body["results"]

    def test_various_artists_album_only(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """V/A rows hit album-only and miss when the artist is sent."""
        row = _row(catalog, dc.VARIOUS_ARTISTS)
        tracks = _lookup(client, _body(row))["results"][0]["artwork"]["tracklist"]
        assert tracks and any(t["artists"] for t in tracks) and any(not t["artists"] for t in tracks)
        with_artist = _lookup(client, {"artist": row.artist_name, "album": row.album_title, "extended": True})
        assert with_artist["results"] == []

    @pytest.mark.parametrize("outcome", [dc.LML_TIMEOUT, dc.LML_DEGRADED])
    def test_transient_rows(self, catalog: dc.DemoCatalog, client: httpx.Client, outcome: str) -> None:
        """Timeout and degraded rows answer 200 with the flag set and no results."""
        body = _lookup(client, _body(_row(catalog, outcome)))
        assert body["results"] == []
        if outcome == dc.LML_TIMEOUT:
            assert body["timeout"] is True and body["degraded"] is False
        else:
            assert body["degraded"] is True and body["degraded_reason"] == "upstream_unavailable"

    def test_unknown_fields_and_no_raw_message_are_fine(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """The current contract ignores unknown fields and does not require raw_message."""
        row = _row(catalog, dc.LML_INLINE)
        body = _lookup(client, {"artist": row.artist_name, "album": row.album_title, "mystery": [1, 2]})
        assert body["results"]

    @pytest.mark.parametrize(
        "content",
        [b"{not json", b"", b"[1, 2]", b'{"artist": 5}', b'{"extended": "yes"}'],
    )
    def test_invalid_body_is_422(self, client: httpx.Client, content: bytes) -> None:
        """Bodies that fail validation answer 422 with the normalised error shape."""
        response = client.post("/api/v1/lookup", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        assert response.json()["message"] == "Request validation failed"
        assert response.json()["details"]["errors"]

    def test_server_timing_header(self, client: httpx.Client) -> None:
        """Lookups carry a Server-Timing header."""
        response = client.post("/api/v1/lookup", json={"artist": "x", "album": "y"})
        assert response.headers["server-timing"].startswith("total;dur=")


class TestLegacy:
    """``legacy=True`` emulates the Feb-2026 LML."""

    @pytest.fixture
    def legacy(self, catalog: dc.DemoCatalog) -> Iterator[httpx.Client]:
        """A client on a legacy-mode fake."""
        with (
            LmlFake(catalog, latency_ms=0.0, jitter_ms=0.0, legacy=True) as fake,
            httpx.Client(base_url=fake.url, timeout=5.0) as http,
        ):
            yield http

    def test_raw_message_is_required(self, catalog: dc.DemoCatalog, legacy: httpx.Client) -> None:
        """Without raw_message the legacy server answers 422 with a FastAPI detail list."""
        row = _row(catalog, dc.LML_INLINE)
        response = legacy.post("/api/v1/lookup", json={"artist": row.artist_name, "album": row.album_title})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "raw_message"]

    def test_no_extended_fields_or_flags(self, catalog: dc.DemoCatalog, legacy: httpx.Client) -> None:
        """Legacy answers ignore ``extended`` and have no timeout/degraded keys."""
        body = _lookup(legacy, _body(_row(catalog, dc.LML_INLINE)))
        assert set(body) == LEGACY_RESPONSE_KEYS
        artwork = body["results"][0]["artwork"]
        assert set(artwork) == {"album", "artist", "release_id", "release_url", "artwork_url", "confidence"}
        assert "call_number" not in body["results"][0]["library_item"]
        timeout = _lookup(legacy, _body(_row(catalog, dc.LML_TIMEOUT)))
        assert set(timeout) == LEGACY_RESPONSE_KEYS and timeout["results"] == []

    def test_legacy_404_body(self, legacy: httpx.Client) -> None:
        """Legacy error bodies use ``detail``."""
        response = legacy.get("/api/v1/discogs/release/1")
        assert response.status_code == 404 and response.json() == {"detail": "Release 1 not found"}


class TestRelease:
    """``GET /api/v1/discogs/release/{id}``."""

    def test_found(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """A known id answers the full DiscogsReleaseMetadata; the second fetch is ``cached``."""
        release_id = _row(catalog, dc.TIER1).discogs_release_id
        assert release_id is not None
        first = client.get(f"/api/v1/discogs/release/{release_id}")
        assert first.status_code == 200
        body = first.json()
        assert set(body) == RELEASE_KEYS
        fixture = catalog.releases[release_id]
        assert body["release_id"] == release_id and body["title"] == fixture.title and body["artist"] == fixture.artist
        assert [t["title"] for t in body["tracklist"]] == [t.title for t in fixture.tracklist]
        assert body["cached"] is False
        assert client.get(f"/api/v1/discogs/release/{release_id}").json()["cached"] is True

    @pytest.mark.parametrize("raw_id", ["0", "-3", "1"])
    def test_missing_is_404(self, client: httpx.Client, raw_id: str) -> None:
        """Unknown, zero and negative ids answer 404 with a message."""
        response = client.get(f"/api/v1/discogs/release/{raw_id}")
        assert response.status_code == 404
        assert response.json() == {"message": f"Release {int(raw_id)} not found"}

    def test_release_404_row(self, catalog: dc.DemoCatalog, client: httpx.Client) -> None:
        """The deliberate tier-1 404 row's id is not served."""
        row = next(r for r in catalog.rows_expecting(dc.RELEASE_404) if r.discogs_release_id is not None)
        assert client.get(f"/api/v1/discogs/release/{row.discogs_release_id}").status_code == 404

    @pytest.mark.parametrize("raw_id", ["abc", "1.5"])
    def test_non_integer_is_422(self, client: httpx.Client, raw_id: str) -> None:
        """Non-integer ids fail validation."""
        response = client.get(f"/api/v1/discogs/release/{raw_id}")
        assert response.status_code == 422 and response.json()["message"] == "Request validation failed"


class TestHealthAndAuth:
    """``/health`` and optional bearer auth."""

    def test_health(self, client: httpx.Client) -> None:
        """Health answers healthy with service states."""
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json()["status"] == "healthy" and response.json()["services"]["database"] == "ok"

    def test_auth(self, catalog: dc.DemoCatalog) -> None:
        """With an api key, /api/v1 needs the right bearer token; /health stays open."""
        body = _body(_row(catalog, dc.LML_INLINE))
        with (
            LmlFake(catalog, latency_ms=0.0, jitter_ms=0.0, api_key="s3cret") as fake,
            httpx.Client(base_url=fake.url, timeout=5.0) as http,
        ):
            missing = http.post("/api/v1/lookup", json=body)
            assert missing.status_code == 401 and missing.json() == {"message": "Missing authorization"}
            for value in ("Bearer nope", "Basic s3cret", "s3cret"):
                wrong = http.post("/api/v1/lookup", json=body, headers={"Authorization": value})
                assert wrong.status_code == 403 and wrong.json() == {"message": "Invalid token"}
            assert http.get("/api/v1/discogs/release/1").status_code == 401
            ok = http.post("/api/v1/lookup", json=body, headers={"Authorization": "bearer s3cret"})
            assert ok.status_code == 200 and ok.json()["results"]
            assert http.get("/health").status_code == 200
            assert fake.stats()["last_headers"]["authorization_present"] is True

    def test_unknown_path_is_404(self, client: httpx.Client) -> None:
        """Unknown paths answer 404."""
        assert client.get("/api/v1/nothing").status_code == 404


class TestFaults:
    """Scripted faults."""

    @pytest.mark.parametrize("kind", ["500", "503", "401", "403", "422"])
    def test_status_faults(self, fake: LmlFake, client: httpx.Client, kind: str) -> None:
        """Status faults answer that status with a message body, once per count."""
        fake.add_fault("/api/v1/lookup", kind, count=1)
        response = client.post("/api/v1/lookup", json={"artist": "a", "album": "b"})
        assert response.status_code == int(kind) and "message" in response.json()
        assert client.post("/api/v1/lookup", json={"artist": "a", "album": "b"}).status_code == 200

    def test_garbage(self, fake: LmlFake, client: httpx.Client) -> None:
        """A garbage fault answers 200 with a body that is not JSON."""
        fake.add_fault("/api/v1/discogs", "garbage")
        response = client.get("/api/v1/discogs/release/1")
        assert response.status_code == 200
        with pytest.raises(ValueError):
            response.json()

    def test_malformed(self, fake: LmlFake, client: httpx.Client) -> None:
        """A malformed fault answers 200 JSON of the wrong shape."""
        fake.add_fault("/api/v1/lookup", "malformed", count=1)
        body = client.post("/api/v1/lookup", json={"artist": "a", "album": "b"}).json()
        assert isinstance(body["results"], str)

    def test_disconnect(self, fake: LmlFake, client: httpx.Client) -> None:
        """A disconnect fault drops the connection without a response, then the fake recovers."""
        fake.add_fault("/api/v1/lookup", "disconnect", count=1)
        with pytest.raises(httpx.TransportError):
            client.post("/api/v1/lookup", json={"artist": "a", "album": "b"})
        assert client.post("/api/v1/lookup", json={"artist": "a", "album": "b"}).status_code == 200

    def test_timeout_holds_until_stop(self, catalog: dc.DemoCatalog) -> None:
        """A held request times the client out, and stop() still returns promptly."""
        fake = LmlFake(catalog, latency_ms=0.0, jitter_ms=0.0).start()
        try:
            fake.add_fault("/api/v1/lookup", "timeout")
            with httpx.Client(base_url=fake.url, timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
                http.post("/api/v1/lookup", json={"artist": "a", "album": "b"})
            assert fake.stats()["in_flight"] == 1
        finally:
            started = time.monotonic()
            fake.stop()
            assert time.monotonic() - started < 3.0
        assert fake.stats()["in_flight"] == 0

    def test_faults_only_match_their_prefix(self, fake: LmlFake, client: httpx.Client) -> None:
        """A release fault leaves lookups alone, and clear_faults removes it."""
        fake.add_fault("/api/v1/discogs/release", "503")
        assert client.post("/api/v1/lookup", json={"artist": "a", "album": "b"}).status_code == 200
        assert client.get("/api/v1/discogs/release/1").status_code == 503
        fake.clear_faults()
        assert client.get("/api/v1/discogs/release/1").status_code == 404

    def test_bad_fault_arguments(self, fake: LmlFake) -> None:
        """Unknown kinds and non-positive counts are rejected."""
        with pytest.raises(ValueError):
            fake.add_fault("/api/v1/lookup", "teapot")
        with pytest.raises(ValueError):
            fake.add_fault("/api/v1/lookup", "500", count=0)
        assert "timeout" in FAULT_KINDS


class TestStats:
    """Counters, concurrency tracking and reset."""

    def test_counters_and_recorded_requests(self, catalog: dc.DemoCatalog, fake: LmlFake, client: httpx.Client) -> None:
        """Each endpoint is counted, with keys, ids and the last caller headers recorded."""
        row = _row(catalog, dc.VARIOUS_ARTISTS)
        headers = {"X-Caller-Budget-Ms": "9000", "X-Caller-Class": "2", "X-Caller-Reason": "library-rotation-picker"}
        client.post("/api/v1/lookup", json=_body(row), headers=headers)
        client.get("/api/v1/discogs/release/42")
        client.get("/health")
        stats = fake.stats()
        assert (stats["lookup"], stats["release"], stats["health"], stats["total"]) == (1, 1, 1, 3)
        assert stats["counts"]["lookup"] == 1
        assert stats["lookup_keys"] == [lookup_key(None, row.album_title)]
        assert stats["release_ids"] == [42]
        assert stats["last_headers"] == {
            "x-caller-budget-ms": None,
            "x-caller-class": None,
            "x-caller-reason": None,
            "authorization_present": False,
        }  # the release GET came last and sent no caller headers
        client.post("/api/v1/lookup", json=_body(row), headers=headers)
        assert fake.stats()["last_headers"]["x-caller-reason"] == "library-rotation-picker"
        assert fake.stats()["last_lookup_body"] == _body(row)

    def test_peak_in_flight(self, catalog: dc.DemoCatalog, fake: LmlFake, client: httpx.Client) -> None:
        """Concurrent requests raise peak_in_flight; reset zeroes it."""
        fake.set_latency(100.0, 0.0)
        barrier = threading.Barrier(4)
        statuses: list[int] = []

        def call() -> None:
            barrier.wait()
            statuses.append(client.post("/api/v1/lookup", json={"artist": "a", "album": "b"}).status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = fake.stats()
        assert statuses == [200] * 4 and stats["peak_in_flight"] >= 2 and stats["in_flight"] == 0
        fake.add_fault("/api/v1/lookup", "500")
        fake.reset()
        stats = fake.stats()
        assert (stats["peak_in_flight"], stats["total"], stats["lookup_keys"], stats["faults"]) == (0, 0, [], [])

    def test_latency_is_not_applied_to_health(self, fake: LmlFake, client: httpx.Client) -> None:
        """Health answers while /api/v1 latency is huge (it would otherwise time the client out)."""
        fake.set_latency(60_000.0, 0.0)
        assert client.get("/health").status_code == 200
        with pytest.raises(ValueError):
            fake.set_latency(-1.0, 0.0)


class TestAdmin:
    """The ``/_admin`` HTTP API."""

    def test_admin_round_trip(self, fake: LmlFake, client: httpx.Client) -> None:
        """Faults, latency, stats and reset are reachable over HTTP and are not counted."""
        added = client.post("/_admin/faults", json={"endpoint": "/api/v1/lookup", "kind": "503", "count": 1})
        assert added.status_code == 200 and added.json()["faults"][0]["kind"] == "503"
        assert client.post("/api/v1/lookup", json={}).status_code == 503
        assert client.post("/_admin/faults", json={"endpoint": "/api/v1", "kind": "500"}).status_code == 200
        assert client.delete("/_admin/faults").status_code == 200
        assert client.post("/api/v1/lookup", json={}).status_code == 200
        latency = client.post("/_admin/latency", json={"latency_ms": 5, "jitter_ms": 1})
        assert latency.status_code == 200
        stats = client.get("/_admin/stats").json()
        assert (stats["latency_ms"], stats["jitter_ms"], stats["lookup"], stats["total"]) == (5.0, 1.0, 2, 2)
        assert client.post("/_admin/reset").json() == {"ok": True}
        assert fake.stats()["total"] == 0

    @pytest.mark.parametrize(
        "body",
        [{"endpoint": "/api/v1", "kind": "teapot"}, {"kind": "500"}, {"endpoint": "/x", "kind": "500", "count": "2"}],
    )
    def test_bad_fault_requests(self, client: httpx.Client, body: dict[str, Any]) -> None:
        """Invalid fault requests answer 400."""
        assert client.post("/_admin/faults", json=body).status_code == 400

    def test_unknown_admin_routes(self, client: httpx.Client) -> None:
        """Unknown admin paths answer 404 and wrong methods 405."""
        assert client.get("/_admin/nope").status_code == 404
        assert client.get("/_admin/faults").status_code == 405
        assert client.post("/_admin/latency", json={"latency_ms": -1}).status_code == 400


def test_cli_prints_its_url_and_exits_cleanly_on_sigterm() -> None:
    """The CLI prints one listening line, serves, and exits 0 on SIGTERM."""
    with subprocess.Popen(
        [sys.executable, "-m", "devtools.lml_fake", "--port", "0", "--latency-ms", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("lml-fake listening on http://127.0.0.1:")
            with httpx.Client(base_url=line.rsplit(" ", 1)[1], timeout=5.0) as http:
                assert http.get("/health").status_code == 200
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == "" and err == ""
