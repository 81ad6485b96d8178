"""A local fake of LML's HTTP API on the standard library, answering from demo catalog fixtures."""

from __future__ import annotations

import argparse
import datetime
import hmac
import json
import logging
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Protocol

from backend.services.lookup_coordinator import LookupKey, lookup_key
from devtools.demo_catalog import (
    ArtworkFixture,
    LibraryItemFixture,
    LookupFixture,
    LookupResultFixture,
    ReleaseFixture,
    TrackFixture,
    build_demo_catalog,
)

logger = logging.getLogger(__name__)

FAULT_KINDS: tuple[str, ...] = ("500", "503", "401", "403", "422", "timeout", "garbage", "malformed", "disconnect")
"""Kinds accepted by :meth:`LmlFake.add_fault`."""

FAKE_VERSION = "0.1.0-fake"
_ENDPOINTS = ("lookup", "release", "health", "other")
_RELEASE_PATH = re.compile(r"^/api/v1/discogs/release/(?P<id>[^/]*)$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_CALLER_HEADERS = ("x-caller-budget-ms", "x-caller-class", "x-caller-reason")
_MAX_BODY = 1 << 20
_STRING_FIELDS = ("artist", "song", "album", "raw_message")
_BOOL_FIELDS = ("extended", "warm_cache", "include_identity", "include_external_caches")
_MISS = LookupFixture(search_type="none")
_HIT_CACHE_STATS = {
    "memory_hits": 2,
    "pg_hits": 1,
    "pg_misses": 0,
    "api_calls": 0,
    "pg_time_ms": 3.1,
    "api_time_ms": 0.0,
}
_MISS_CACHE_STATS = {
    "memory_hits": 0,
    "pg_hits": 0,
    "pg_misses": 2,
    "api_calls": 3,
    "pg_time_ms": 4.0,
    "api_time_ms": 910.5,
}
_TIMEOUT_CACHE_STATS = {**_MISS_CACHE_STATS, "api_calls": 14, "api_time_ms": 25000.0}


class FixtureSource(Protocol):
    """Anything with LML fixtures: a ``DemoCatalog`` or an ``LmlFixtures``."""

    @property
    def lookups(self) -> Mapping[LookupKey, LookupFixture]:
        """Lookup fixtures keyed by ``lookup_key(artist, album)``."""
        ...

    @property
    def releases(self) -> Mapping[int, ReleaseFixture]:
        """Release fixtures keyed by Discogs release id."""
        ...


@dataclass
class _Fault:
    prefix: str
    kind: str
    remaining: int | None


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class _Response:
    status: int
    payload: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    disconnect: bool = False


def _json(status: int, body: object, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), headers=headers)


_DISCONNECT = _Response(0, disconnect=True)


@dataclass
class _Counters:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_ENDPOINTS, 0))
    total: int = 0
    peak_in_flight: int = 0
    call_times: list[tuple[float, str]] = field(default_factory=list)  # (wall clock, endpoint) of lookups/releases
    lookup_keys: list[LookupKey] = field(default_factory=list)
    release_ids: list[int] = field(default_factory=list)
    last_headers: dict[str, Any] = field(default_factory=dict)
    last_lookup_body: dict[str, Any] | None = None
    served_releases: set[int] = field(default_factory=set)


def _track_json(track: TrackFixture) -> dict[str, Any]:
    return {
        "position": track.position,
        "title": track.title,
        "duration": track.duration,
        "artists": list(track.artists),
    }


class LmlFake:
    """An in-process HTTP server that behaves like LML (current contract, or the Feb-2026 one).

    Lookups are answered from fixtures keyed by ``lookup_key(artist, album)``; releases by id.
    Latency, bearer auth and scripted faults are configurable at run time, and the ``/_admin``
    API exposes the same controls when the fake runs as a separate process.

    Args:
        fixtures: The LML fixtures (a ``DemoCatalog`` or ``LmlFixtures``).
        host: Interface to bind.
        port: Port to bind; 0 picks a free one (read it back from ``url``).
        latency_ms: Mean added latency on ``/api/v1/*`` requests.
        jitter_ms: Uniform jitter (+/-) around ``latency_ms``; the delay is clamped at 0.
        api_key: When set, ``/api/v1/*`` requires ``Authorization: Bearer <api_key>``.
        legacy: Emulate the Feb-2026 LML: ``raw_message`` required, no extended fields, no
            ``timeout``/``degraded`` keys, ``{"detail": ...}`` error bodies.
        timeout_hold_s: How long a ``timeout`` fault holds a request (``stop()`` releases it).
    """

    def __init__(
        self,
        fixtures: FixtureSource,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 150.0,
        jitter_ms: float = 30.0,
        api_key: str | None = None,
        legacy: bool = False,
        timeout_hold_s: float = 600.0,
    ) -> None:
        self._lookups: Mapping[LookupKey, LookupFixture] = dict(fixtures.lookups)
        self._releases: Mapping[int, ReleaseFixture] = dict(fixtures.releases)
        self._host = host
        self._port = port
        self._api_key = api_key
        self.legacy = legacy
        self.timeout_hold_s = timeout_hold_s
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._rng = random.Random()
        self._latency_ms = 0.0
        self._jitter_ms = 0.0
        self.set_latency(latency_ms, jitter_ms)
        self._faults: list[_Fault] = []
        self._counters = _Counters()
        self._in_flight = 0
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LmlFake:
        """Bind and serve in a background daemon thread.

        Returns:
            ``self``, so ``fake = LmlFake(...).start()`` works.

        Raises:
            RuntimeError: When already started.
            OSError: When the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("LmlFake is already running")
        self._stopping.clear()
        server = _Server((self._host, self._port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"lml-fake-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("lml-fake listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, release held (``timeout``) requests and close open connections.

        Idempotent; returns within a couple of seconds even with stuck clients.
        """
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        with self._idle:
            while self._connections and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)
        if thread is not None:
            thread.join(timeout=2.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> LmlFake:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL (``http://host:port``) of the running fake."""
        if self._server is None:
            raise RuntimeError("LmlFake is not running")
        host, port = self._server.server_address[:2]
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        return f"http://{host!s}:{port}"

    # -- controls ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Return request counters and recent request details (JSON-serialisable copy).

        Keys: ``lookup``, ``release``, ``health``, ``other`` (also grouped under ``counts``),
        ``total``, ``in_flight``,
        ``peak_in_flight`` (max concurrent ``/api/v1`` requests), ``call_times`` (wall-clock time and
        endpoint of every lookup and release fetch), ``lookup_keys``,
        ``release_ids``, ``last_headers`` (the ``X-Caller-*`` values and
        ``authorization_present`` of the last ``/api/v1`` request), ``last_lookup_body``,
        ``faults``, ``latency_ms``, ``jitter_ms``, ``legacy``, ``auth_required``.
        """
        with self._lock:
            c = self._counters
            return {
                **c.counts,
                "counts": dict(c.counts),
                "total": c.total,
                "in_flight": self._in_flight,
                "peak_in_flight": c.peak_in_flight,
                "call_times": [list(t) for t in c.call_times],
                "lookup_keys": list(c.lookup_keys),
                "release_ids": list(c.release_ids),
                "last_headers": dict(c.last_headers),
                "last_lookup_body": dict(c.last_lookup_body) if c.last_lookup_body is not None else None,
                "faults": [{"endpoint": f.prefix, "kind": f.kind, "remaining": f.remaining} for f in self._faults],
                "latency_ms": self._latency_ms,
                "jitter_ms": self._jitter_ms,
                "legacy": self.legacy,
                "auth_required": self._api_key is not None,
            }

    def reset(self) -> None:
        """Zero the counters and the peak, forget recorded requests and clear all faults."""
        with self._lock:
            self._counters = _Counters(peak_in_flight=self._in_flight)
            self._faults.clear()

    def set_latency(self, latency_ms: float, jitter_ms: float) -> None:
        """Change the added latency on ``/api/v1/*`` (takes effect for new requests).

        Raises:
            ValueError: When either value is negative.
        """
        if latency_ms < 0 or jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")
        with self._lock:
            self._latency_ms = float(latency_ms)
            self._jitter_ms = float(jitter_ms)

    def add_fault(self, endpoint_prefix: str, kind: str, count: int | None = None) -> None:
        """Make requests whose path starts with ``endpoint_prefix`` fail.

        Args:
            endpoint_prefix: Path prefix, e.g. ``/api/v1/lookup`` or ``/api/v1/discogs``.
            kind: One of ``FAULT_KINDS``: a status (``"500"``, ``"503"``, ``"401"``, ``"403"``,
                ``"422"``), ``"timeout"`` (hold until ``timeout_hold_s`` or ``stop()``, then
                drop), ``"garbage"`` (200, non-JSON body), ``"malformed"`` (200, JSON of the wrong
                shape) or ``"disconnect"`` (close without answering).
            count: Fail this many requests then stop; ``None`` means until cleared.

        Raises:
            ValueError: For an unknown kind or a count below 1.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 or None")
        with self._lock:
            self._faults.append(_Fault(endpoint_prefix, kind, count))

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        with self._lock:
            self._faults.clear()

    # -- connection bookkeeping (called from the server) -------------------------------------

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._idle:
            self._connections.discard(conn)
            self._idle.notify_all()

    # -- request dispatch (runs on handler threads) ------------------------------------------

    def _dispatch(self, req: _Request) -> _Response:
        started = time.monotonic()
        path = req.target.split("?", 1)[0]
        if path.startswith("/_admin/"):
            return self._admin(req.method, path, req.body)
        api = path.startswith("/api/v1/")
        endpoint = self._classify(path)
        with self._lock:
            counters = self._counters
            counters.counts[endpoint] += 1
            counters.total += 1
            if endpoint in ("lookup", "release"):
                counters.call_times.append((time.time(), endpoint))
            if api:
                self._in_flight += 1
                counters.peak_in_flight = max(counters.peak_in_flight, self._in_flight)
                counters.last_headers = {h: req.headers.get(h) for h in _CALLER_HEADERS}
                counters.last_headers["authorization_present"] = "authorization" in req.headers
            fault = self._take_fault(path)
            delay = max(0.0, self._latency_ms + self._rng.uniform(-self._jitter_ms, self._jitter_ms)) / 1000
        try:
            if fault is not None:
                response = self._fault_response(fault, path)
            else:
                denied = self._auth_error(req.headers) if api else None
                response = denied if denied is not None else self._route(req.method, path, req.body, started)
            if api and delay > 0:
                # The latency is the whole service time: what building the answer took counts towards it.
                remaining = delay - (time.monotonic() - started)
                if remaining > 0:
                    self._stopping.wait(remaining)
            return response
        finally:
            if api:
                with self._lock:
                    self._in_flight -= 1

    @staticmethod
    def _classify(path: str) -> str:
        if path == "/api/v1/lookup":
            return "lookup"
        if _RELEASE_PATH.match(path):
            return "release"
        if path == "/health":
            return "health"
        return "other"

    def _take_fault(self, path: str) -> str | None:
        for fault in self._faults:
            if path.startswith(fault.prefix):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault.kind
        return None

    def _fault_response(self, kind: str, path: str) -> _Response:
        if kind == "timeout":
            self._stopping.wait(self.timeout_hold_s)
            return _DISCONNECT
        if kind == "disconnect":
            return _DISCONNECT
        if kind == "garbage":
            return _Response(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        if kind == "malformed":
            if path.startswith("/api/v1/discogs/release/"):
                return _json(200, {"release_id": "not-a-number", "title": None, "tracklist": "not-a-list"})
            return _json(200, {"results": "not-a-list", "search_type": 42, "timeout": "maybe"})
        messages = {
            "500": "Internal server error",
            "503": "Service unavailable",
            "401": "Missing authorization",
            "403": "Invalid token",
            "422": "Request validation failed",
        }
        return self._error(int(kind), messages[kind])

    def _error(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> _Response:
        if self.legacy:
            return _json(status, {"detail": errors if errors is not None else message})
        body: dict[str, Any] = {"message": message}
        if errors is not None:
            body["details"] = {"errors": errors}
        return _json(status, body)

    def _validation_error(self, errors: list[dict[str, Any]]) -> _Response:
        return self._error(422, "Request validation failed", errors)

    def _auth_error(self, headers: Mapping[str, str]) -> _Response | None:
        if self._api_key is None:
            return None
        value = headers.get("authorization", "").strip()
        if not value:
            return self._error(401, "Missing authorization")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._api_key.encode()):
            return self._error(403, "Invalid token")
        return None

    def _route(self, method: str, path: str, body: bytes, started: float) -> _Response:
        if path == "/api/v1/lookup":
            return self._lookup(body, started) if method == "POST" else self._error(405, "Method Not Allowed")
        match = _RELEASE_PATH.match(path)
        if match:
            return self._release(match["id"]) if method == "GET" else self._error(405, "Method Not Allowed")
        if path == "/health":
            return self._health() if method == "GET" else self._error(405, "Method Not Allowed")
        return self._error(404, "Not Found")

    # -- /api/v1/lookup ----------------------------------------------------------------------

    def _lookup(self, raw: bytes, started: float) -> _Response:
        if not raw.strip():
            return self._validation_error(
                [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
            )
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._validation_error(
                [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "ctx": {"error": str(exc)}}]
            )
        if not isinstance(payload, dict):
            return self._validation_error(
                [{"type": "model_attributes_type", "loc": ["body"], "input": payload,
                  "msg": "Input should be a valid dictionary or object to extract fields from"}]
            )  # fmt: skip
        errors = self._lookup_errors(payload)
        if errors:
            return self._validation_error(errors)
        artist, album = payload.get("artist"), payload.get("album")
        key = lookup_key(artist, album)
        with self._lock:
            self._counters.lookup_keys.append(key)
            self._counters.last_lookup_body = payload
        fixture = self._lookups.get(key, _MISS)
        extended = payload.get("extended") is True and not self.legacy
        body = self._lookup_body(fixture, extended)
        if self.legacy:
            return _json(200, body)
        elapsed_ms = (time.monotonic() - started) * 1000
        return _json(200, body, (("Server-Timing", f"total;dur={elapsed_ms:.1f}"),))

    def _lookup_errors(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        for name in _STRING_FIELDS:
            value = payload.get(name)
            if value is not None and not isinstance(value, str):
                errors.append({"type": "string_type", "loc": ["body", name], "msg": "Input should be a valid string",
                               "input": value})  # fmt: skip
        if self.legacy:
            if "raw_message" not in payload:
                errors.append({"type": "missing", "loc": ["body", "raw_message"], "msg": "Field required",
                               "input": dict(payload)})  # fmt: skip
            elif payload["raw_message"] is None:
                errors.append({"type": "string_type", "loc": ["body", "raw_message"],
                               "msg": "Input should be a valid string", "input": None})  # fmt: skip
            return errors
        for name in _BOOL_FIELDS:
            value = payload.get(name)
            if value is not None and not isinstance(value, bool):
                errors.append({"type": "bool_type", "loc": ["body", name], "msg": "Input should be a valid boolean",
                               "input": value})  # fmt: skip
        return errors

    def _lookup_body(self, fixture: LookupFixture, extended: bool) -> dict[str, Any]:
        results = [
            self._result_json(item, fixture if extended and i == 0 else None) for i, item in enumerate(fixture.results)
        ]
        if fixture.timeout:
            cache_stats = _TIMEOUT_CACHE_STATS
        else:
            cache_stats = _HIT_CACHE_STATS if fixture.results else _MISS_CACHE_STATS
        body: dict[str, Any] = {
            "api_version": None,
            "results": results,
            "search_type": fixture.search_type,
            "song_not_found": fixture.song_not_found,
            "found_on_compilation": fixture.found_on_compilation,
            "context_message": fixture.context_message,
            "corrected_artist": fixture.corrected_artist,
            "cache_stats": dict(cache_stats),
            "identity": None,
            "timeout": fixture.timeout,
            "degraded": fixture.degraded,
            "degraded_reason": fixture.degraded_reason,
        }
        if self.legacy:
            for key in ("api_version", "identity", "timeout", "degraded", "degraded_reason"):
                del body[key]
        return body

    def _result_json(self, item: LookupResultFixture, extended: LookupFixture | None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "library_item": self._library_item_json(item.library_item),
            "artwork": self._artwork_json(item.artwork, extended) if item.artwork is not None else None,
        }
        if not self.legacy:
            result.update({"reconciled_identity": None, "matched_via": None, "matched_via_alias": None})
        return result

    def _library_item_json(self, item: LibraryItemFixture) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": item.id,
            "title": item.title,
            "artist": item.artist,
            "call_letters": item.call_letters,
            "artist_call_number": item.artist_call_number,
            "release_call_number": item.release_call_number,
            "genre": item.genre,
            "format": item.format,
            "label": item.label,
        }
        if self.legacy:
            body["library_url"] = f"http://www.wxyc.info/wxycdb/libraryRelease?id={item.id}"
            return body
        numbers = f"{item.artist_call_number}/{item.release_call_number}" if item.artist_call_number else None
        body["call_number"] = " ".join(p for p in (item.genre, item.format, item.call_letters, numbers) if p)
        body["library_url"] = f"https://dj.wxyc.org/dashboard/album/legacy/{item.id}" if item.id else ""
        body["on_streaming"] = item.on_streaming
        return body

    def _artwork_json(self, art: ArtworkFixture, extended: LookupFixture | None) -> dict[str, Any]:
        base: dict[str, Any] = {
            "album": art.album,
            "artist": art.artist,
            "release_id": art.release_id,
            "release_url": art.release_url,
            "artwork_url": art.artwork_url,
            "confidence": art.confidence,
        }
        if self.legacy:
            return base
        base.update(
            {
                "master_id": art.master_id,
                "release_year": art.release_year,
                "artist_bio": art.artist_bio,
                "wikipedia_url": art.wikipedia_url,
                "spotify_url": art.spotify_url,
                "apple_music_url": art.apple_music_url,
                "youtube_music_url": art.youtube_music_url,
                "bandcamp_url": art.bandcamp_url,
                "soundcloud_url": art.soundcloud_url,
                "streaming_status": dict(art.streaming_status) if art.streaming_status is not None else None,
                "discogs_artist_id": None,
                "tracklist": None,
                "genres": None,
                "styles": None,
                "label": None,
                "full_release_date": None,
                "artist_image_url": None,
                "profile_tokens": None,
                "writer_credits": None,
            }
        )
        if extended is not None:
            tracks = extended.tracklist
            base.update(
                {
                    "discogs_artist_id": extended.discogs_artist_id,
                    "tracklist": [_track_json(t) for t in tracks] if tracks is not None else None,
                    "genres": list(extended.genres) if extended.genres is not None else None,
                    "styles": list(extended.styles) if extended.styles is not None else None,
                    "label": extended.label,
                    "full_release_date": extended.full_release_date,
                    "artist_image_url": extended.artist_image_url,
                    "profile_tokens": [{"type": "plainText", "text": art.artist_bio}] if art.artist_bio else None,
                }
            )
        return base

    # -- /api/v1/discogs/release/{id} and /health --------------------------------------------

    def _release(self, raw_id: str) -> _Response:
        if not _INTEGER.match(raw_id):
            return self._validation_error(
                [{"type": "int_parsing", "loc": ["path", "release_id"], "input": raw_id,
                  "msg": "Input should be a valid integer, unable to parse string as an integer"}]
            )  # fmt: skip
        release_id = int(raw_id)
        release = self._releases.get(release_id) if release_id > 0 else None
        with self._lock:
            self._counters.release_ids.append(release_id)
            cached = release_id in self._counters.served_releases
            if release is not None:
                self._counters.served_releases.add(release_id)
        if release is None:
            return self._error(404, f"Release {release_id} not found")
        return _json(200, self._release_json(release, cached))

    def _release_json(self, rel: ReleaseFixture, cached: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "release_id": rel.release_id,
            "title": rel.title,
            "artist": rel.artist,
            "year": rel.year,
            "label": rel.label,
            "artist_id": rel.artist_id,
            "label_id": rel.label_id,
            "genres": list(rel.genres),
            "styles": list(rel.styles),
            "tracklist": [_track_json(t) for t in rel.tracklist],
            "artwork_url": rel.artwork_url,
            "release_url": f"https://www.discogs.com/release/{rel.release_id}",
            "cached": cached,
        }
        if self.legacy:
            return body
        body["master_id"] = None
        body["artists"] = [{"artist_id": rel.artist_id, "name": rel.artist, "join": "", "role": None}]
        body["extra_artists"] = []
        body["labels"] = [{"label_id": rel.label_id, "name": rel.label, "catno": rel.catno}] if rel.label else []
        body["released"] = rel.released
        body["videos"] = []
        return body

    def _health(self) -> _Response:
        services = {"database": "ok", "discogs_api": "ok", "discogs_cache": "ok"}
        if self.legacy:
            return _json(200, {"status": "healthy", "version": FAKE_VERSION, "services": services})
        with self._lock:
            live = len(self._counters.served_releases)
        return _json(
            200,
            {
                "status": "healthy",
                "version": FAKE_VERSION,
                "commit_sha": None,
                "discogs_breaker_state": "closed",
                "discogs_live_requests_total": live,
                "services": services,
            },
        )

    # -- /_admin -----------------------------------------------------------------------------

    def _admin(self, method: str, path: str, raw: bytes) -> _Response:
        routes: dict[tuple[str, str], Callable[[Mapping[str, Any]], _Response]] = {
            ("GET", "/_admin/stats"): lambda _: _json(200, self.stats()),
            ("GET", "/_admin/health"): lambda _: _json(200, {"status": "ok"}),
            ("POST", "/_admin/reset"): self._admin_reset,
            ("POST", "/_admin/faults"): self._admin_add_fault,
            ("DELETE", "/_admin/faults"): self._admin_clear_faults,
            ("POST", "/_admin/latency"): self._admin_latency,
        }
        handler = routes.get((method, path))
        if handler is None:
            known = any(p == path for _, p in routes)
            return _json(405 if known else 404, {"message": "Method Not Allowed" if known else "Not Found"})
        if method == "POST" and path != "/_admin/reset":
            try:
                payload = json.loads(raw or b"{}")
            except (ValueError, UnicodeDecodeError):
                return _json(400, {"message": "body must be a JSON object"})
            if not isinstance(payload, dict):
                return _json(400, {"message": "body must be a JSON object"})
        else:
            payload = {}
        return handler(payload)

    def _admin_reset(self, _: Mapping[str, Any]) -> _Response:
        self.reset()
        return _json(200, {"ok": True})

    def _admin_add_fault(self, payload: Mapping[str, Any]) -> _Response:
        endpoint, kind, count = payload.get("endpoint"), payload.get("kind"), payload.get("count")
        if isinstance(kind, int) and not isinstance(kind, bool):
            kind = str(kind)
        if not isinstance(endpoint, str) or not isinstance(kind, str):
            return _json(400, {"message": "endpoint and kind are required strings"})
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            return _json(400, {"message": "count must be an integer or null"})
        try:
            self.add_fault(endpoint, kind, count)
        except ValueError as exc:
            return _json(400, {"message": str(exc)})
        return _json(200, {"ok": True, "faults": self.stats()["faults"]})

    def _admin_clear_faults(self, _: Mapping[str, Any]) -> _Response:
        self.clear_faults()
        return _json(200, {"ok": True})

    def _admin_latency(self, payload: Mapping[str, Any]) -> _Response:
        with self._lock:
            latency, jitter = payload.get("latency_ms", self._latency_ms), payload.get("jitter_ms", self._jitter_ms)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (latency, jitter)):
            return _json(400, {"message": "latency_ms and jitter_ms must be numbers"})
        try:
            self.set_latency(float(latency), float(jitter))
        except ValueError as exc:
            return _json(400, {"message": str(exc)})
        return _json(200, {"ok": True, "latency_ms": float(latency), "jitter_ms": float(jitter)})


class _Server(ThreadingHTTPServer):
    """Threading server that tracks its connections so ``LmlFake.stop`` can close them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # the stdlib default (5) resets bursts of concurrent connects

    def __init__(self, address: tuple[str, int], fake: LmlFake) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake._register(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.fake._unregister(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("lml-fake: error while serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Socket I/O only: frame the request, hand it to the fake, write the response."""

    protocol_version = "HTTP/1.1"
    server_version = "lml-fake/" + FAKE_VERSION
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are dropped after this many seconds

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("lml-fake %s: " + format, self.address_string(), *args)

    def _serve(self) -> None:
        fake = self.server.fake if isinstance(self.server, _Server) else None
        if fake is None:  # pragma: no cover - the handler is only used by _Server
            return
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._write(_json(400, {"message": "Bad request framing"}))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = fake._dispatch(_Request(self.command, self.path, headers, body))
        if response.disconnect:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(response)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            return None
        if size < 0 or size > _MAX_BODY:
            return None
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.payload)))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.payload)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake on the demo catalog until SIGINT/SIGTERM.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m devtools.lml_fake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--jitter-ms", type=float, default=30.0)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer <key>' on /api/v1/*")
    parser.add_argument("--legacy", action="store_true", help="emulate the Feb-2026 LML contract")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    fake = LmlFake(
        build_demo_catalog(datetime.date.today()),
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        api_key=args.api_key,
        legacy=args.legacy,
    )
    try:
        try:
            fake.start()
        except OSError as exc:
            print(f"lml-fake: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(f"lml-fake listening on {fake.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
