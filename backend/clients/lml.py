"""Async HTTP client for LML (library-metadata-lookup): lookups, release fetches and a health ping."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import Any, TypeGuard

import httpx
import sentry_sdk

from backend.config import Secret
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
from backend.models import RotationTrack, Tracklist

from .limiter import LmlLimiter

logger = logging.getLogger(__name__)

DEFAULT_CALLER = "library-rotation-picker"
# BS traffic class for interactive-but-tolerant callers; advisory on LML's side.
CALLER_CLASS = "2"


@dataclass(frozen=True, slots=True)
class LookupResponse:
    """The part of an LML ``/lookup`` answer the picker consumes.

    ``top_release_id`` is ``results[0].artwork.release_id`` as sent (0 is LML's no-Discogs-release
    sentinel; None when there are no results or no artwork). ``top_tracklist`` is the inline
    (extended-mode) tracklist of the top result, None when absent or empty; per-track artists are
    left as sent (possibly empty), the caller applies any artist fallback.
    """

    search_type: str | None
    result_count: int
    top_release_id: int | None
    top_tracklist: Tracklist | None
    timeout: bool
    degraded: bool


@dataclass(frozen=True, slots=True)
class Release:
    """The part of an LML ``/discogs/release/{id}`` answer the picker consumes."""

    release_id: int
    artist: str | None
    tracklist: Tracklist


class _MalformedError(Exception):
    """Internal: the body is not the documented shape; the message says what is wrong."""


def _normalise_base_url(base_url: str | None) -> str | None:
    """Strip a trailing ``/api/v1`` and ``/`` so full paths can be appended."""
    if base_url is None or not base_url.strip():
        return None
    url = base_url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")].rstrip("/")
    return url


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _MalformedError(f"{key} is not a boolean")
    return value


def _parse_track(item: object, index: int) -> RotationTrack:
    if not isinstance(item, dict):
        raise _MalformedError(f"tracklist[{index}] is not an object")
    position, title = item.get("position"), item.get("title")
    if not isinstance(position, str):
        raise _MalformedError(f"tracklist[{index}].position is not a string")
    if not isinstance(title, str):
        raise _MalformedError(f"tracklist[{index}].title is not a string")
    duration = item.get("duration")
    if duration is not None and not isinstance(duration, str):
        raise _MalformedError(f"tracklist[{index}].duration is not a string or null")
    artists = item.get("artists")
    if artists is None:
        artists = []
    if not isinstance(artists, list) or not all(isinstance(a, str) for a in artists):
        raise _MalformedError(f"tracklist[{index}].artists is not a list of strings")
    return RotationTrack(position, title, duration or None, tuple(artists))


def _parse_tracklist(value: object) -> Tracklist:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _MalformedError("tracklist is not a list")
    return tuple(_parse_track(item, i) for i, item in enumerate(value))


def parse_lookup(body: object) -> LookupResponse:
    """Project a decoded ``/lookup`` body; tolerant of legacy (Feb 2026) bodies.

    Raises:
        LmlBadResponseError: a consumed field has the wrong type.
    """
    try:
        if not isinstance(body, dict):
            raise _MalformedError("body is not an object")
        results = body.get("results", [])
        if not isinstance(results, list):
            raise _MalformedError("results is not a list")
        search_type = body.get("search_type")
        if search_type is not None and not isinstance(search_type, str):
            raise _MalformedError("search_type is not a string")
        release_id: int | None = None
        tracklist: Tracklist | None = None
        if results:
            top = results[0]
            if not isinstance(top, dict):
                raise _MalformedError("results[0] is not an object")
            artwork = top.get("artwork")
            if artwork is not None:
                if not isinstance(artwork, dict):
                    raise _MalformedError("results[0].artwork is not an object")
                raw_id = artwork.get("release_id")
                if not _is_int(raw_id):
                    raise _MalformedError("results[0].artwork.release_id is not an integer")
                release_id = raw_id
                tracklist = _parse_tracklist(artwork.get("tracklist")) or None
        return LookupResponse(
            search_type=search_type,
            result_count=len(results),
            top_release_id=release_id,
            top_tracklist=tracklist,
            timeout=_optional_bool(body, "timeout"),
            degraded=_optional_bool(body, "degraded"),
        )
    except _MalformedError as exc:
        raise LmlBadResponseError(f"LML returned a malformed lookup body: {exc}") from exc


def parse_release(body: object) -> Release:
    """Project a decoded ``/discogs/release/{id}`` body.

    Raises:
        LmlBadResponseError: a consumed field has the wrong type.
    """
    try:
        if not isinstance(body, dict):
            raise _MalformedError("body is not an object")
        release_id = body.get("release_id")
        if not _is_int(release_id):
            raise _MalformedError("release_id is not an integer")
        artist = body.get("artist")
        if artist is not None and not isinstance(artist, str):
            raise _MalformedError("artist is not a string")
        return Release(release_id, artist or None, _parse_tracklist(body.get("tracklist")))
    except _MalformedError as exc:
        raise LmlBadResponseError(f"LML returned a malformed release body: {exc}") from exc


def _status_error(response: httpx.Response) -> LmlError:
    status = response.status_code
    reason = response.reason_phrase or "Unknown"
    if status in (401, 403):
        return LmlAuthError(f"LML rejected our credentials: {status}")
    if status == 404:
        return LmlNotFoundError("LML responded with 404: Not Found")
    if 400 <= status < 500:
        return LmlStatusError(f"LML responded with {status}: {reason}", status)
    return LmlUnavailableError(f"LML responded with {status}: {reason}")


def _decode(response: httpx.Response, what: str) -> object:
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise LmlBadResponseError(f"LML returned a malformed {what} body: not JSON") from exc


class LmlClient:
    """LML over one shared ``httpx.AsyncClient``; every call but :meth:`ping` goes through the limiter.

    Args:
        http: the worker's HTTP client; None means unconfigured.
        base_url: LML host root (``LIBRARY_METADATA_URL``); a trailing ``/api/v1`` is tolerated.
        api_key: sent as a bearer token when set.
        limiter: shared admission control (breaker, permits, rate).
        lookup_timeout_s: per-call deadline for ``/lookup``.
        release_timeout_s: per-call deadline for ``/discogs/release/{id}``.
        health_timeout_s: deadline for the ``/health`` ping.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None,
        *,
        base_url: str | None,
        api_key: Secret | None,
        limiter: LmlLimiter,
        lookup_timeout_s: float,
        release_timeout_s: float,
        health_timeout_s: float = 2.0,
    ) -> None:
        self._http = http
        self._base_url = _normalise_base_url(base_url)
        self._api_key = api_key
        self.limiter = limiter
        self._lookup_timeout_s = lookup_timeout_s
        self._release_timeout_s = release_timeout_s
        self._health_timeout_s = health_timeout_s
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()  # (endpoint, result)

    @property
    def configured(self) -> bool:
        """Whether a base URL and an HTTP client were given."""
        return self._base_url is not None and self._http is not None

    @property
    def base_url(self) -> str | None:
        """The normalised host root."""
        return self._base_url

    def _auth_headers(self) -> dict[str, str]:
        if self._api_key is None:
            return {}
        return {"Authorization": f"Bearer {self._api_key.reveal()}"}

    async def lookup(
        self,
        artist: str | None,
        album: str,
        *,
        caller: str = DEFAULT_CALLER,
        priority: str = "live",
    ) -> LookupResponse:
        """Ask LML which release ``artist`` - ``album`` is, in extended mode (inline tracklist).

        Pass ``artist=None`` for Various Artists rows: the body then carries the album only.

        Raises:
            LmlError: unconfigured, shed, timed out, unreachable, or a non-2xx/malformed answer.
        """
        parts = [p.strip() for p in (artist, album) if p is not None and p.strip()]
        body: dict[str, object] = {"raw_message": " - ".join(parts)}  # the Feb-2026 LML requires it
        if artist is not None and artist.strip():
            body["artist"] = artist.strip()
        if album.strip():
            body["album"] = album.strip()
        body["extended"] = True
        headers = {
            **self._auth_headers(),
            "X-Caller-Class": CALLER_CLASS,
            "X-Caller-Reason": caller,
            # Deliberately no X-Caller-Budget-Ms (upstream BS#1983): LML clamps any budget header to
            # min(header - 200 ms, LML_SEARCH_BUDGET_MS = 4 s) and its presence arms the empty-result
            # give-up gate, which once cut picker coverage to ~23 %. Our own timeout bounds the wait.
        }
        response = await self._call("lookup", "POST", "/api/v1/lookup", headers, self._lookup_timeout_s, priority, body)
        return parse_lookup(_decode(response, "lookup"))

    async def get_release(self, release_id: int, *, priority: str = "live") -> Release:
        """Fetch one Discogs release through LML (shares the limiter with lookups).

        Raises:
            LmlNotFoundError: LML answered 404 (in the early LML: not found *or* could not fetch).
            LmlError: unconfigured, shed, timed out, unreachable, or a non-2xx/malformed answer.
        """
        headers = {**self._auth_headers(), "X-Caller-Reason": DEFAULT_CALLER}
        response = await self._call(
            "release",
            "GET",
            f"/api/v1/discogs/release/{int(release_id)}",
            headers,
            self._release_timeout_s,
            priority,
            None,
        )
        return parse_release(_decode(response, "release"))

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        headers: dict[str, str],
        timeout_s: float,
        priority: str,
        body: dict[str, object] | None,
    ) -> httpx.Response:
        """Send one request inside a limiter slot and map every failure to an ``LmlError``."""
        if self._http is None or self._base_url is None:
            raise LmlUnconfiguredError()
        http, url = self._http, self._base_url + path
        started = time.monotonic()
        status: int | None = None
        outcome = "ok"
        # A span per call when Sentry tracing is on (SENTRY_TRACES_SAMPLE_RATE): the limiter's wait
        # and the request (httpx's own span nests inside); a no-op otherwise.
        with sentry_sdk.start_span(op="lml.call", name=f"LML {endpoint}") as span:
            span.set_data("lml.priority", priority)
            try:
                async with self.limiter.slot(priority):
                    try:
                        # httpx's timeout is per phase (connect/read/...); wait_for caps the whole call so a
                        # permit is never held much longer than timeout_s.
                        response = await asyncio.wait_for(
                            http.request(method, url, json=body, headers=headers, timeout=timeout_s),
                            timeout_s,
                        )
                    except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
                        # Raised inside the slot: the limiter counts it as a breaker failure.
                        raise LmlTimeoutError() from exc
                    except httpx.RequestError as exc:
                        cause = str(exc) or type(exc).__name__
                        raise LmlUnavailableError(f"LML request failed: {cause}") from exc
                    status = response.status_code
                    if not response.is_success:
                        # Inside the slot: a 5xx (LmlUnavailableError) counts against the breaker.
                        raise _status_error(response)
                return response
            except LimiterShedError as exc:
                outcome = exc.reason
                raise
            except LmlError as exc:
                outcome = type(exc).__name__
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                span.set_data("lml.outcome", outcome)
                self.calls[(endpoint, outcome)] += 1
                # One line per call; routine successes only at DEBUG so a walk does not flood the log.
                logger.log(
                    logging.DEBUG if outcome in ("ok", "LmlNotFoundError") else logging.INFO,
                    "lml call endpoint=%s status=%s outcome=%s priority=%s ms=%d",
                    endpoint,
                    status if status is not None else "-",
                    outcome,
                    priority,
                    (time.monotonic() - started) * 1000,
                )

    async def ping(self) -> str:
        """Probe ``GET /health`` without the limiter; never raises.

        Returns:
            ``"ok"`` (2xx), ``"unavailable"`` (network error or non-2xx), ``"timeout"`` or
            ``"unconfigured"``.
        """
        if self._http is None or self._base_url is None:
            return "unconfigured"
        try:
            response = await asyncio.wait_for(
                self._http.get(self._base_url + "/health", timeout=self._health_timeout_s),
                self._health_timeout_s,
            )
        except (httpx.TimeoutException, asyncio.TimeoutError):
            return "timeout"
        except Exception as exc:  # a health probe reports, it never raises
            logger.warning("lml ping failed error=%s", type(exc).__name__)
            return "unavailable"
        return "ok" if response.is_success else "unavailable"
