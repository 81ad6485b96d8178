"""Unit tests for the LML HTTP client: requests, response parsing and error mapping."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from backend.clients.factory import build_http_client, build_lml_client
from backend.clients.limiter import CircuitBreaker, LmlLimiter, LocalTokens
from backend.clients.lml import LmlClient, LookupResponse, Release
from backend.config import AppConfig, Secret
from backend.errors import (
    LimiterShedError,
    LmlAuthError,
    LmlBadResponseError,
    LmlError,
    LmlNotFoundError,
    LmlStatusError,
    LmlTimeoutError,
    LmlUnavailableError,
    LmlUnconfiguredError,
)
from backend.models import RotationTrack

BASE = "http://lml.test:8001"
LOOKUP_URL = f"{BASE}/api/v1/lookup"
RELEASE_URL = f"{BASE}/api/v1/discogs/release/6690542"
HEALTH_URL = f"{BASE}/health"


def make_limiter(threshold: int = 5) -> LmlLimiter:
    """A limiter as ``build_lml_client`` wires it, with room for every call a test makes."""
    return LmlLimiter(2, 1.0, CircuitBreaker(threshold, 30.0), LocalTokens(600))


def make_client(http: httpx.AsyncClient | None, **overrides: Any) -> LmlClient:
    kwargs: dict[str, Any] = {
        "base_url": BASE,
        "api_key": None,
        "limiter": make_limiter(),
        "lookup_timeout_s": 5.0,
        "release_timeout_s": 10.0,
    }
    kwargs.update(overrides)
    return LmlClient(http, **kwargs)


def make_track(**overrides: Any) -> dict[str, Any]:
    track: dict[str, Any] = {"position": "1", "title": "VI Scose Poise", "duration": "8:09", "artists": []}
    track.update(overrides)
    return track


def make_artwork(**overrides: Any) -> dict[str, Any]:
    artwork: dict[str, Any] = {
        "album": "Confield",
        "artist": "Autechre",
        "release_id": 4080,
        "master_id": None,
        "release_url": "https://www.discogs.com/release/4080",
        "artwork_url": "https://i.discogs.com/confield.jpg",
        "confidence": 1.0,
        "release_year": 2001,
        "discogs_artist_id": 3391,
        "tracklist": [make_track(), make_track(position="2", title="Cfern", duration="6:52")],
        "genres": ["Electronic"],
        "styles": ["IDM"],
    }
    artwork.update(overrides)
    return artwork


def make_lookup_body(*, artwork: Any = "default", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "api_version": None,
        "results": [
            {
                "library_item": {"id": 65880, "title": "Confield", "artist": "Autechre"},
                "artwork": make_artwork() if artwork == "default" else artwork,
                "reconciled_identity": None,
                "matched_via": None,
            }
        ],
        "search_type": "direct",
        "song_not_found": False,
        "found_on_compilation": False,
        "context_message": None,
        "corrected_artist": None,
        "cache_stats": None,
        "identity": None,
        "timeout": False,
        "degraded": False,
        "degraded_reason": None,
    }
    body.update(overrides)
    return body


def make_release_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "release_id": 6690542,
        "title": "On Your Own Love Again",
        "artist": "Jessica Pratt",
        "year": 2015,
        "tracklist": [
            {"position": "A1", "title": "Back, Baby", "duration": "3:11", "artists": []},
            {"position": "A2", "title": "Greycedes", "duration": "3:27", "artists": []},
        ],
        "release_url": "https://www.discogs.com/release/6690542",
        "cached": True,
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One client per module (each costs ~50 ms of TLS setup); httpx_mock patches its transport."""
    async with httpx.AsyncClient() as client:
        yield client


class TestLookupRequest:
    async def test_sends_extended_artist_album_body(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """An artist+album lookup posts raw_message, artist, album and extended=true."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
        await make_client(http).lookup("Autechre", "Confield")
        request = httpx_mock.get_request()
        assert request is not None
        assert json.loads(request.content) == {
            "raw_message": "Autechre - Confield",
            "artist": "Autechre",
            "album": "Confield",
            "extended": True,
        }

    @pytest.mark.parametrize(
        "artist",
        [pytest.param(None, id="none"), pytest.param("", id="empty"), pytest.param("  ", id="blank")],
    )
    async def test_album_only_body_for_various_artists(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, artist: str | None
    ) -> None:
        """Without an artist the body carries the album alone, still with raw_message."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
        await make_client(http).lookup(artist, "Nuggets")
        request = httpx_mock.get_request()
        assert request is not None
        assert json.loads(request.content) == {"raw_message": "Nuggets", "album": "Nuggets", "extended": True}

    async def test_headers_without_api_key(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """Without a key there is no Authorization header; caller class and reason are sent, no budget."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
        await make_client(http).lookup("Autechre", "Confield")
        request = httpx_mock.get_request()
        assert request is not None
        assert "Authorization" not in request.headers
        assert request.headers["X-Caller-Class"] == "2"
        assert request.headers["X-Caller-Reason"] == "library-rotation-picker"
        assert request.headers["Content-Type"] == "application/json"
        assert "X-Caller-Budget-Ms" not in request.headers

    async def test_headers_with_api_key_and_caller(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """A configured key is sent as a bearer token and the caller label as X-Caller-Reason."""
        httpx_mock.add_response(
            method="POST",
            url=LOOKUP_URL,
            match_headers={"Authorization": "Bearer s3cret", "X-Caller-Reason": "warm"},
            json=make_lookup_body(),
        )
        client = make_client(http, api_key=Secret("s3cret"))
        await client.lookup("Autechre", "Confield", caller="warm")
        request = httpx_mock.get_request()
        assert request is not None
        assert "X-Caller-Budget-Ms" not in request.headers

    async def test_api_key_is_never_logged(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The call log line names the endpoint and status but not the key."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
        with caplog.at_level(logging.DEBUG, logger="backend.clients.lml"):
            await make_client(http, api_key=Secret("s3cret")).lookup("Autechre", "Confield")
        assert "endpoint=lookup status=200 outcome=ok" in caplog.text
        assert "s3cret" not in caplog.text

    @pytest.mark.parametrize(
        "base_url",
        [
            pytest.param(BASE, id="root"),
            pytest.param(BASE + "/", id="trailing-slash"),
            pytest.param(BASE + "/api/v1", id="api-v1"),
            pytest.param(BASE + "/api/v1/", id="api-v1-slash"),
        ],
    )
    async def test_base_url_is_normalised(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, base_url: str) -> None:
        """A trailing /api/v1 or slash on the configured URL does not change the request path."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
        client = make_client(http, base_url=base_url)
        assert client.base_url == BASE
        await client.lookup("Autechre", "Confield")

    async def test_calls_are_counted_by_endpoint_and_outcome(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient
    ) -> None:
        """Every call is counted once under its endpoint and outcome (ok, error class or shed reason)."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
        httpx_mock.add_response(method="GET", url=RELEASE_URL, status_code=404)
        limiter = make_limiter(threshold=1)
        client = make_client(http, limiter=limiter)
        await client.lookup("Autechre", "Confield")
        with pytest.raises(LmlNotFoundError):
            await client.get_release(6690542)
        limiter.breaker.record_failure()
        with pytest.raises(LimiterShedError):
            await client.lookup("Autechre", "Confield")
        assert dict(client.calls) == {
            ("lookup", "ok"): 1,
            ("release", "LmlNotFoundError"): 1,
            ("lookup", "shed_breaker_open"): 1,
        }

    async def test_lookup_goes_through_the_limiter(self, http: httpx.AsyncClient) -> None:
        """With the breaker open the lookup is shed without a request."""
        limiter = make_limiter(threshold=1)
        limiter.breaker.record_failure()
        with pytest.raises(LimiterShedError):
            await make_client(http, limiter=limiter).lookup("Autechre", "Confield")


class TestLookupParsing:
    async def lookup(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, body: Any) -> LookupResponse:
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=body)
        return await make_client(http).lookup("Autechre", "Confield")

    async def test_current_extended_shape(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """A current extended answer yields the search type, top release id and inline tracklist."""
        response = await self.lookup(httpx_mock, http, make_lookup_body())
        assert response == LookupResponse(
            search_type="direct",
            result_count=1,
            top_release_id=4080,
            top_tracklist=(
                RotationTrack("1", "VI Scose Poise", "8:09", ()),
                RotationTrack("2", "Cfern", "6:52", ()),
            ),
            timeout=False,
            degraded=False,
        )

    async def test_legacy_shape(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """A Feb-2026 answer without timeout, degraded or extended fields parses with defaults."""
        body = {
            "results": [
                {
                    "library_item": {"id": 65880, "title": "Confield", "artist": "Autechre"},
                    "artwork": {
                        "album": "Confield",
                        "artist": "Autechre",
                        "release_id": 4080,
                        "release_url": "https://www.discogs.com/release/4080",
                        "artwork_url": None,
                        "confidence": 0.8,
                    },
                }
            ],
            "search_type": "direct",
            "song_not_found": False,
            "found_on_compilation": False,
            "context_message": None,
            "corrected_artist": None,
            "cache_stats": {},
        }
        response = await self.lookup(httpx_mock, http, body)
        assert response == LookupResponse("direct", 1, 4080, None, False, False)

    async def test_inline_tracklist_details(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """Per-track artists become tuples; missing artists, null and empty durations are tolerated."""
        tracklist = [
            {"position": "A1", "title": "One", "duration": "1:00", "artists": ["Guest", "Other"]},
            {"position": "", "title": "Two", "duration": None},
            {"position": "B1", "title": "Three", "duration": "", "artists": None},
        ]
        response = await self.lookup(httpx_mock, http, make_lookup_body(artwork=make_artwork(tracklist=tracklist)))
        assert response.top_tracklist == (
            RotationTrack("A1", "One", "1:00", ("Guest", "Other")),
            RotationTrack("", "Two", None, ()),
            RotationTrack("B1", "Three", None, ()),
        )

    @pytest.mark.parametrize(
        "tracklist",
        [pytest.param(None, id="null"), pytest.param([], id="empty"), pytest.param("absent", id="absent")],
    )
    async def test_no_inline_tracklist(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, tracklist: Any) -> None:
        """A null, empty or absent tracklist gives top_tracklist None."""
        artwork = make_artwork(tracklist=tracklist)
        if tracklist == "absent":
            del artwork["tracklist"]
        response = await self.lookup(httpx_mock, http, make_lookup_body(artwork=artwork))
        assert response.top_tracklist is None
        assert response.top_release_id == 4080

    async def test_streaming_sentinel_release_id_zero(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """The release_id 0 sentinel is passed through as 0, with its inline tracklist."""
        artwork = make_artwork(release_id=0, release_url="")
        response = await self.lookup(httpx_mock, http, make_lookup_body(artwork=artwork))
        assert response.top_release_id == 0
        assert response.top_tracklist is not None

    async def test_no_results(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """An empty result list gives no release id and no tracklist."""
        response = await self.lookup(httpx_mock, http, make_lookup_body(results=[], search_type="none"))
        assert response == LookupResponse("none", 0, None, None, False, False)

    async def test_null_artwork(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """A library hit without artwork gives no release id."""
        response = await self.lookup(httpx_mock, http, make_lookup_body(artwork=None))
        assert (response.result_count, response.top_release_id, response.top_tracklist) == (1, None, None)

    async def test_timeout_and_degraded_flags(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """The timeout and degraded flags are carried through."""
        body = make_lookup_body(results=[], timeout=True, degraded=True, degraded_reason="deadline_exceeded")
        response = await self.lookup(httpx_mock, http, body)
        assert (response.timeout, response.degraded) == (True, True)

    async def test_only_the_top_result_is_read(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """Results after the first are counted but not parsed."""
        body = make_lookup_body()
        body["results"].append({"whatever": 1})
        response = await self.lookup(httpx_mock, http, body)
        assert response.result_count == 2


def _lookup_with(**changes: Any) -> dict[str, Any]:
    return make_lookup_body(**changes)


def _artwork_with(**changes: Any) -> dict[str, Any]:
    return make_lookup_body(artwork=make_artwork(**changes))


def _track_with(**changes: Any) -> dict[str, Any]:
    return make_lookup_body(artwork=make_artwork(tracklist=[make_track(**changes)]))


class TestLookupMalformed:
    @pytest.mark.parametrize(
        ("body", "what"),
        [
            pytest.param([], "body is not an object", id="list-body"),
            pytest.param(_lookup_with(results=None), "results is not a list", id="results-null"),
            pytest.param(_lookup_with(results={"0": {}}), "results is not a list", id="results-object"),
            pytest.param(_lookup_with(results=["x"]), "results[0] is not an object", id="result-not-object"),
            pytest.param(_lookup_with(search_type=3), "search_type", id="search-type-int"),
            pytest.param(_lookup_with(timeout="yes"), "timeout", id="timeout-str"),
            pytest.param(_lookup_with(degraded=1), "degraded", id="degraded-int"),
            pytest.param(make_lookup_body(artwork="x"), "artwork is not an object", id="artwork-str"),
            pytest.param(_artwork_with(release_id="4080"), "release_id", id="release-id-str"),
            pytest.param(_artwork_with(release_id=True), "release_id", id="release-id-bool"),
            pytest.param(_artwork_with(release_id=None), "release_id", id="release-id-null"),
            pytest.param(_artwork_with(release_id=4080.0), "release_id", id="release-id-float"),
            pytest.param(_artwork_with(tracklist={"1": "x"}), "tracklist is not a list", id="tracklist-obj"),
            pytest.param(_artwork_with(tracklist=["x"]), "tracklist[0] is not an object", id="track-str"),
            pytest.param(_track_with(position=1), "position", id="position-int"),
            pytest.param(_track_with(position=None), "position", id="position-null"),
            pytest.param(_track_with(title=None), "title", id="title-null"),
            pytest.param(_track_with(duration=189), "duration", id="duration-int"),
            pytest.param(_track_with(artists="Guest"), "artists", id="artists-str"),
            pytest.param(_track_with(artists=[1]), "artists", id="artists-int-items"),
        ],
    )
    async def test_wrong_shapes_are_bad_responses(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, body: Any, what: str
    ) -> None:
        """A 200 body whose consumed fields have the wrong type raises LmlBadResponseError (502)."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=body)
        with pytest.raises(LmlBadResponseError, match="LML returned a malformed lookup body") as info:
            await make_client(http).lookup("Autechre", "Confield")
        assert what in info.value.message
        assert info.value.status_code == 502

    @pytest.mark.parametrize(
        "content",
        [pytest.param(b"<html>oops</html>", id="html"), pytest.param(b"\xff\xfe\x00", id="binary")],
    )
    async def test_non_json_body_is_a_bad_response(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, content: bytes
    ) -> None:
        """A 200 body that is not JSON raises LmlBadResponseError."""
        httpx_mock.add_response(method="POST", url=LOOKUP_URL, content=content)
        with pytest.raises(LmlBadResponseError, match="malformed lookup body: not JSON"):
            await make_client(http).lookup("Autechre", "Confield")


ERROR_ROWS = [
    pytest.param({"status_code": 401}, LmlAuthError, "LML rejected our credentials: 401", 502, id="401"),
    pytest.param({"status_code": 403}, LmlAuthError, "LML rejected our credentials: 403", 502, id="403"),
    pytest.param({"status_code": 404}, LmlNotFoundError, "LML responded with 404: Not Found", 404, id="404"),
    pytest.param({"status_code": 422}, LmlStatusError, "LML responded with 422: Unprocessable Entity", 422, id="422"),
    pytest.param(
        {"status_code": 500},
        LmlUnavailableError,
        "LML responded with 500: Internal Server Error",
        502,
        id="500",
    ),
    pytest.param(
        {"status_code": 503},
        LmlUnavailableError,
        "LML responded with 503: Service Unavailable",
        502,
        id="503",
    ),
    pytest.param(httpx.ReadTimeout("read timed out"), LmlTimeoutError, "LML request timed out", 504, id="timeout"),
    pytest.param(
        httpx.ConnectError("connection refused"),
        LmlUnavailableError,
        "LML request failed: connection refused",
        502,
        id="connect-error",
    ),
]


class TestErrorMapping:
    @pytest.mark.parametrize(
        ("method", "url"),
        [pytest.param("POST", LOOKUP_URL, id="lookup"), pytest.param("GET", RELEASE_URL, id="release")],
    )
    @pytest.mark.parametrize(("reply", "error", "message", "status"), ERROR_ROWS)
    async def test_failures_map_to_domain_errors(
        self,
        httpx_mock: HTTPXMock,
        http: httpx.AsyncClient,
        method: str,
        url: str,
        reply: dict[str, Any] | Exception,
        error: type[LmlError],
        message: str,
        status: int,
    ) -> None:
        """Each transport failure and non-2xx status maps to one LmlError subclass, message and status."""
        if isinstance(reply, Exception):
            httpx_mock.add_exception(reply, method=method, url=url)
        else:
            httpx_mock.add_response(method=method, url=url, json={"message": "x"}, **reply)
        client = make_client(http)
        with pytest.raises(error) as info:
            if method == "POST":
                await client.lookup("Autechre", "Confield")
            else:
                await client.get_release(6690542)
        assert type(info.value) is error
        assert info.value.message == message
        assert info.value.status_code == status
        if isinstance(reply, Exception):
            assert isinstance(info.value.__cause__, httpx.RequestError)  # the transport error is chained

    @pytest.mark.parametrize(
        ("reply", "state"),
        [
            pytest.param(httpx.ReadTimeout("slow"), "open", id="timeout-opens"),
            pytest.param(httpx.ConnectError("refused"), "open", id="network-error-opens"),
            pytest.param(500, "open", id="500-opens"),
            pytest.param(503, "open", id="503-opens"),
            pytest.param(401, "closed", id="401-does-not"),
            pytest.param(404, "closed", id="404-does-not"),
            pytest.param(422, "closed", id="422-does-not"),
        ],
    )
    async def test_unhealthy_answers_count_against_the_breaker(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, reply: Exception | int, state: str
    ) -> None:
        """Timeouts, network failures and 5xx are breaker failures; a 4xx means LML answered."""
        if isinstance(reply, Exception):
            httpx_mock.add_exception(reply, url=LOOKUP_URL)
        else:
            httpx_mock.add_response(url=LOOKUP_URL, status_code=reply)
        limiter = make_limiter(threshold=1)
        with pytest.raises(LmlError):
            await make_client(http, limiter=limiter).lookup("Autechre", "Confield")
        assert limiter.breaker.state == state
        assert limiter.snapshot()["in_use"] == 0

    async def test_malformed_body_does_not_count_against_the_breaker(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient
    ) -> None:
        """A 200 with a body we cannot use is LML answering: the breaker stays closed."""
        httpx_mock.add_response(url=LOOKUP_URL, content=b"<html>oops</html>")
        limiter = make_limiter(threshold=1)
        with pytest.raises(LmlBadResponseError):
            await make_client(http, limiter=limiter).lookup("Autechre", "Confield")
        assert limiter.breaker.state == "closed"

    async def test_five_consecutive_5xx_open_the_breaker_and_the_sixth_call_is_shed(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient
    ) -> None:
        """Five 5xx answers in a row open a threshold-5 breaker; the sixth call sends no request."""
        for _ in range(5):
            httpx_mock.add_response(method="POST", url=LOOKUP_URL, status_code=503)
        limiter = make_limiter(threshold=5)
        client = make_client(http, limiter=limiter)
        for _ in range(5):
            with pytest.raises(LmlUnavailableError):
                await client.lookup("Autechre", "Confield")
        with pytest.raises(LimiterShedError, match="shed_breaker_open"):
            await client.lookup("Autechre", "Confield")
        assert len(httpx_mock.get_requests()) == 5
        assert limiter.sheds["shed_breaker_open"] == 1

    async def test_a_success_between_5xx_answers_keeps_the_breaker_closed(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient
    ) -> None:
        """Failures must be consecutive: a good answer in the middle resets the count."""
        for status in (503, 503, 200, 503, 503):
            if status == 200:
                httpx_mock.add_response(method="POST", url=LOOKUP_URL, json=make_lookup_body())
            else:
                httpx_mock.add_response(method="POST", url=LOOKUP_URL, status_code=status)
        limiter = make_limiter(threshold=3)
        client = make_client(http, limiter=limiter)
        for _ in range(5):
            with contextlib.suppress(LmlUnavailableError):
                await client.lookup("Autechre", "Confield")
        assert limiter.breaker.state == "closed"
        assert limiter.breaker.consecutive_failures == 2


class TestGetRelease:
    async def test_request_and_parsing(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """A release fetch GETs the release path with the caller label and parses the tracklist."""
        httpx_mock.add_response(method="GET", url=RELEASE_URL, json=make_release_body())
        release = await make_client(http, api_key=Secret("k")).get_release(6690542)
        assert release == Release(
            6690542,
            "Jessica Pratt",
            (RotationTrack("A1", "Back, Baby", "3:11", ()), RotationTrack("A2", "Greycedes", "3:27", ())),
        )
        request = httpx_mock.get_request()
        assert request is not None
        assert request.headers["Authorization"] == "Bearer k"
        assert request.headers["X-Caller-Reason"] == "library-rotation-picker"

    @pytest.mark.parametrize(
        "tracklist",
        [pytest.param([], id="empty"), pytest.param(None, id="null"), pytest.param("absent", id="absent")],
    )
    async def test_empty_tracklist(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, tracklist: Any) -> None:
        """A release without tracks parses to an empty tuple."""
        body = make_release_body(tracklist=tracklist)
        if tracklist == "absent":
            del body["tracklist"]
        httpx_mock.add_response(url=RELEASE_URL, json=body)
        release = await make_client(http).get_release(6690542)
        assert release.tracklist == ()

    async def test_null_durations_and_track_artists(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """Null and empty durations become None; per-track credits are kept."""
        tracklist = [
            {"position": "1", "title": "A", "duration": None, "artists": ["X"]},
            {"position": "2", "title": "B", "duration": "", "artists": []},
        ]
        httpx_mock.add_response(url=RELEASE_URL, json=make_release_body(tracklist=tracklist))
        release = await make_client(http).get_release(6690542)
        assert release.tracklist == (RotationTrack("1", "A", None, ("X",)), RotationTrack("2", "B", None, ()))

    async def test_thin_legacy_body(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """An early-LML PG-cache body without labels or genres parses."""
        body = {
            "release_id": 6690542,
            "title": "T",
            "artist": "Jessica Pratt",
            "tracklist": [],
            "cached": True,
        }
        httpx_mock.add_response(url=RELEASE_URL, json=body)
        release = await make_client(http).get_release(6690542)
        assert release == Release(6690542, "Jessica Pratt", ())

    @pytest.mark.parametrize(
        ("body", "what"),
        [
            pytest.param([1], "body is not an object", id="list-body"),
            pytest.param(make_release_body(release_id=None), "release_id", id="release-id-null"),
            pytest.param(make_release_body(release_id="6690542"), "release_id", id="release-id-str"),
            pytest.param(make_release_body(artist=7), "artist", id="artist-int"),
            pytest.param(make_release_body(tracklist="A1"), "tracklist", id="tracklist-str"),
            pytest.param(make_release_body(tracklist=[{"title": "x"}]), "position", id="position-missing"),
        ],
    )
    async def test_wrong_shapes_are_bad_responses(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, body: Any, what: str
    ) -> None:
        """A release body with wrong types raises LmlBadResponseError."""
        httpx_mock.add_response(url=RELEASE_URL, json=body)
        with pytest.raises(LmlBadResponseError, match="malformed release body") as info:
            await make_client(http).get_release(6690542)
        assert what in info.value.message

    async def test_release_fetch_goes_through_the_limiter(self, http: httpx.AsyncClient) -> None:
        """Release fetches share the limiter: an open breaker sheds them without a request."""
        limiter = make_limiter(threshold=1)
        limiter.breaker.record_failure()
        with pytest.raises(LimiterShedError, match="shed_breaker_open"):
            await make_client(http, limiter=limiter).get_release(6690542)


class TestUnconfigured:
    @pytest.mark.parametrize(
        ("with_http", "base_url"),
        [
            pytest.param(True, None, id="no-url"),
            pytest.param(True, "  ", id="blank-url"),
            pytest.param(False, BASE, id="no-http"),
        ],
    )
    async def test_calls_raise_unconfigured(
        self, http: httpx.AsyncClient, with_http: bool, base_url: str | None
    ) -> None:
        """Without a URL or an HTTP client every call raises LmlUnconfiguredError and ping says so."""
        client = make_client(http if with_http else None, base_url=base_url)
        assert not client.configured
        with pytest.raises(LmlUnconfiguredError):
            await client.lookup("Autechre", "Confield")
        with pytest.raises(LmlUnconfiguredError):
            await client.get_release(1)
        assert await client.ping() == "unconfigured"

    def test_configured(self, http: httpx.AsyncClient) -> None:
        """A URL plus an HTTP client is configured."""
        assert make_client(http).configured


class TestPing:
    @pytest.mark.parametrize(
        ("reply", "expected"),
        [
            pytest.param(200, "ok", id="ok"),
            pytest.param(204, "ok", id="no-content"),
            pytest.param(503, "unavailable", id="503"),
            pytest.param(404, "unavailable", id="404"),
            pytest.param(httpx.ConnectError("refused"), "unavailable", id="network"),
            pytest.param(httpx.ConnectTimeout("slow"), "timeout", id="timeout"),
        ],
    )
    async def test_outcomes(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient, reply: int | Exception, expected: str
    ) -> None:
        """ping() reports ok, unavailable or timeout and never raises."""
        if isinstance(reply, Exception):
            httpx_mock.add_exception(reply, method="GET", url=HEALTH_URL)
        else:
            httpx_mock.add_response(method="GET", url=HEALTH_URL, status_code=reply)
        assert await make_client(http).ping() == expected

    async def test_bypasses_the_limiter(self, httpx_mock: HTTPXMock, http: httpx.AsyncClient) -> None:
        """ping() is sent even while the breaker is open."""
        httpx_mock.add_response(method="GET", url=HEALTH_URL, json={"status": "healthy"})
        limiter = make_limiter(threshold=1)
        limiter.breaker.record_failure()
        assert await make_client(http, limiter=limiter).ping() == "ok"


class TestBuildLmlClient:
    async def test_settings_reach_the_client_and_its_limiter(
        self, httpx_mock: HTTPXMock, http: httpx.AsyncClient
    ) -> None:
        """The factory's client uses the configured URL and key, and a breaker with the configured threshold."""
        for _ in range(2):
            httpx_mock.add_response(
                method="POST", url=LOOKUP_URL, status_code=503, match_headers={"Authorization": "Bearer k"}
            )
        settings = AppConfig(lml_url=BASE + "/api/v1", lml_api_key=Secret("k"), lml_breaker_threshold=2)
        client = build_lml_client(settings, http, pool=None, host=None)
        assert client.configured and client.base_url == BASE
        for _ in range(2):
            with pytest.raises(LmlUnavailableError):
                await client.lookup("Autechre", "Confield")
        with pytest.raises(LimiterShedError, match="shed_breaker_open"):
            await client.lookup("Autechre", "Confield")

    def test_without_a_database_or_host_the_rate_is_this_process_own(self) -> None:
        """With neither a pool nor a host budget, tokens come from a full local bucket of the configured rate."""
        settings = AppConfig(lml_url=BASE, lml_rate_per_min=40, lml_max_concurrent=3)
        snapshot = build_lml_client(settings, None, pool=None, host=None).limiter.snapshot()
        assert snapshot["tokens"] == {"scope": "process", "tokens": 40}
        assert snapshot["max_concurrent"] == 3

    def test_unconfigured_without_a_url(self) -> None:
        """Without LIBRARY_METADATA_URL there is no HTTP client and the LML client is unconfigured."""
        settings = AppConfig()
        assert build_http_client(settings) is None
        assert not build_lml_client(settings, None, pool=None, host=None).configured
