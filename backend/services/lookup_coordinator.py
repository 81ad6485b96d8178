"""Coalesces identical LML lookups and caches their answers briefly."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache

from backend.clients.lml import LookupResponse
from backend.db.errors import DATABASE_ERRORS

logger = logging.getLogger(__name__)

EMPTY_PART = "∅"

LookupKey = tuple[str, str]


class SharedStore(Protocol):
    """Answers shared with the other processes and hosts (``backend.db.lookups.SharedLookups``)."""

    async def get(self, key: LookupKey) -> LookupResponse | None: ...

    async def put(self, key: LookupKey, response: LookupResponse, ttl_s: float) -> None: ...


class LookupClient(Protocol):
    """The part of the LML client the coordinator uses."""

    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse: ...


def normalize_part(text: str | None) -> str:
    """Trim, lowercase and collapse whitespace runs; None/empty/whitespace-only becomes ``∅``."""
    collapsed = " ".join((text or "").split())
    return collapsed.lower() if collapsed else EMPTY_PART


def lookup_key(artist: str | None, album: str | None) -> LookupKey:
    """The coalescing/cache key: ``(normalize(artist), normalize(album))``.

    A tuple rather than the upstream ``"a|b"`` string, so a ``|`` inside a title cannot collide.
    """
    return (normalize_part(artist), normalize_part(album))


def _is_transient(response: LookupResponse) -> bool:
    """LML ran out of time, or shed work and found nothing: not an answer worth remembering."""
    return response.timeout or (response.degraded and response.result_count == 0)


class _InFlight:
    __slots__ = ("priority", "task")

    def __init__(self, task: asyncio.Task[LookupResponse], priority: str) -> None:
        self.task = task
        self.priority = priority


class LookupCoordinator:
    """Single-flight plus a short TTL cache in front of ``LmlClient.lookup``.

    Identical lookups (same normalised artist and album) that overlap share one LML call and
    receive the same (immutable) :class:`LookupResponse`. Successful answers are cached for
    ``ttl_s``, except transient ones (``timeout``, or ``degraded`` with no results). Errors reach
    every waiter and are never cached. The first caller's spelling and priority go on the wire,
    except that a ``live`` caller never waits on a ``warm`` call (which may be queued behind live
    traffic): it starts its own live call, which later callers then join.

    Args:
        client: anything with ``LmlClient.lookup``'s signature.
        ttl_s: seconds a cached answer lives.
        maxsize: cached answers kept (LRU beyond that).
        clock: monotonic seconds; tests inject a fake one.
        shared: answers shared with every other process and host for ``ttl_s`` (PostgreSQL), asked
            before LML and written after it.
    """

    def __init__(
        self,
        client: LookupClient,
        *,
        ttl_s: float = 300,
        maxsize: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedStore | None = None,
    ) -> None:
        self._client = client
        self._shared = shared
        self._ttl_s = ttl_s
        self._cache: TTLCache[LookupKey, LookupResponse] = TTLCache(maxsize=maxsize, ttl=ttl_s, timer=clock)
        self._inflight: dict[LookupKey, _InFlight] = {}

    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse:
        """Return LML's answer for ``artist`` - ``album``, from cache, a shared call or a new call.

        Raises:
            LmlError: the (shared) LML call failed; nothing was cached.
        """
        key = lookup_key(artist, album)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        entry = self._inflight.get(key)
        if entry is None or (priority == "live" and entry.priority != "live"):
            task = asyncio.ensure_future(self._fetch(key, artist, album, priority))
            # Runs even if the task is cancelled before it starts (a ``finally`` in _fetch would not),
            # and before any waiter resumes; _fetch has already cached a success by then.
            task.add_done_callback(functools.partial(self._forget, key))
            entry = _InFlight(task, priority)
            self._inflight[key] = entry
        # Shielded: a cancelled waiter must not cancel the call other waiters share.
        return await asyncio.shield(entry.task)

    async def _fetch(self, key: LookupKey, artist: str | None, album: str, priority: str) -> LookupResponse:
        if self._shared is not None:
            try:
                shared = await self._shared.get(key)
            except DATABASE_ERRORS as exc:  # the shared store is an optimisation: ask LML
                logger.debug("shared lookup unreadable key=%s error=%r", key, exc)
                shared = None
            if shared is not None:
                self._cache[key] = shared
                return shared
        response = await self._client.lookup(artist, album, priority=priority)
        if not _is_transient(response):
            self._cache[key] = response
            if self._shared is not None:
                try:
                    await self._shared.put(key, response, self._ttl_s)
                except DATABASE_ERRORS as exc:
                    logger.debug("shared lookup not stored key=%s error=%r", key, exc)
        return response

    def _forget(self, key: LookupKey, task: asyncio.Task[LookupResponse]) -> None:
        """Done callback: drop the in-flight entry (unless a newer call replaced it)."""
        entry = self._inflight.get(key)
        if entry is not None and entry.task is task:
            del self._inflight[key]
        # If every waiter was cancelled nobody retrieves an error; mark it retrieved so asyncio does
        # not log "Task exception was never retrieved". Waiters still get it through their shield.
        if not task.cancelled():
            task.exception()

    def stats(self) -> dict[str, int]:
        """Cache size (live entries) and in-flight call count."""
        self._cache.expire()
        return {"size": len(self._cache), "inflight": len(self._inflight)}

    def clear(self) -> None:
        """Drop every cached answer (in-flight calls are left to finish)."""
        self._cache.clear()

    async def aclose(self) -> None:
        """Cancel in-flight calls (shutdown)."""
        tasks = [entry.task for entry in self._inflight.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
