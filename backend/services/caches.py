"""Bounded LRU caches with per-entry expiry (cachetools.TLRUCache), an injectable clock and honest sizes."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cachetools import TLRUCache

if TYPE_CHECKING:
    from backend.models import TrackBody
    from backend.services.rotation_resolver import CachedAnswer

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()

# Caches sized from a row count get this much headroom (they only ever grow).
SIZE_HEADROOM = 1.25


def _expiry(_key: object, entry: tuple[float, object], _now: float) -> float:
    return entry[0]


class _CountingTLRU(TLRUCache):  # type: ignore[type-arg]
    """cachetools evicts through ``popitem`` (expiry does not), so counting there is exact."""

    evictions = 0

    def popitem(self) -> tuple[Any, Any]:
        self.evictions += 1
        return super().popitem()


class ExpiringCache(Generic[K, V]):
    """An LRU cache whose entries expire at a time fixed when they are set.

    Values must be immutable (tuples, frozen dataclasses, bytes): callers share them by reference.

    Args:
        maxsize: entries kept before the least recently used one is evicted.
        ttl_s: default lifetime, counted from ``set``; ``get`` does not extend it.
        clock: monotonic seconds; tests inject a fake one.
    """

    def __init__(self, maxsize: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: TLRUCache[K, tuple[float, V]] = _CountingTLRU(maxsize=maxsize, ttu=_expiry, timer=clock)
        self._evictions_before = 0  # evictions counted by caches replaced on resize
        self.hits = 0
        self.misses = 0

    @property
    def maxsize(self) -> int:
        return int(self._cache.maxsize)

    def now(self) -> float:
        return self._clock()

    def get(self, key: K) -> V | None:
        """Return the live value for ``key`` or None (counts a hit or a miss)."""
        entry = self._cache.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def peek(self, key: K) -> V | None:
        """Like :meth:`get`, without counting (internal bookkeeping reads)."""
        entry = self._cache.get(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: K) -> bool:
        return self._cache.get(key, _MISSING) is not _MISSING

    def set(self, key: K, value: V, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` seconds (default: the cache's TTL)."""
        self.set_until(key, value, self._clock() + (self.ttl_s if ttl_s is None else ttl_s))

    def set_until(self, key: K, value: V, expires_at: float) -> None:
        """Store ``value`` until the monotonic time ``expires_at`` (ignored if already past)."""
        if expires_at <= self._clock():
            self._cache.pop(key, None)
            return
        self._cache[key] = (expires_at, value)  # expires stale entries, then evicts LRU if full

    @property
    def evictions(self) -> int:
        """Live entries pushed out because the cache was full (never expiries)."""
        return self._evictions_before + int(getattr(self._cache, "evictions", 0))

    def delete(self, key: K) -> bool:
        """Drop ``key``; return whether it was present."""
        return self._cache.pop(key, _MISSING) is not _MISSING

    def clear(self) -> None:
        self._cache.clear()

    def keys(self) -> list[K]:
        """Live keys (expired entries are purged first)."""
        self._cache.expire()
        return list(self._cache.keys())

    def __len__(self) -> int:
        self._cache.expire()
        return len(self._cache)

    def resize(self, maxsize: int) -> None:
        """Grow (never shrink) the bound, keeping every live entry and its expiry.

        Growth is at least geometric, so many small increments rebuild the cache O(log n) times.
        """
        if maxsize <= self._cache.maxsize:
            return
        maxsize = max(maxsize, 2 * int(self._cache.maxsize))
        old = self._cache
        self._evictions_before = self.evictions
        new: TLRUCache[K, tuple[float, V]] = _CountingTLRU(maxsize=maxsize, ttu=_expiry, timer=self._clock)
        # TLRUCache iterates in insertion order; only popitem yields least recently used first.
        while old:
            try:
                key, entry = TLRUCache.popitem(old)  # not counted: moving, not evicting
            except KeyError:  # the rest expired meanwhile
                break
            new[key] = entry
        self._cache = new

    def grow_to_hold(self, entries: int) -> None:
        """Grow the bound so ``entries`` fit with headroom (sized from the active row count)."""
        self.resize(int(entries * SIZE_HEADROOM))

    def stats(self) -> dict[str, int]:
        return {
            "size": len(self),
            "maxsize": self.maxsize,
            "evictions": self.evictions,
            "hits": self.hits,
            "misses": self.misses,
        }


@dataclass
class Caches:
    """A process's caches, filled by live traffic and by loading the persisted answers.

    Attributes:
        rotation: answers of active rows (sized from the active row count, so they all fit).
        cold: answers of unknown and inactive ids, in a separate small LRU: any number of requests
            for ids outside the rotation can never displace a warm row.
        release_positive: release id -> tracklist body.
        release_negative: release id -> True for LML 404s.
    """

    rotation: ExpiringCache[int, CachedAnswer]
    cold: ExpiringCache[int, CachedAnswer]
    release_positive: ExpiringCache[int, TrackBody]
    release_negative: ExpiringCache[int, bool]

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            "rotation": self.rotation.stats(),
            "cold": self.cold.stats(),
            "release_positive": self.release_positive.stats(),
            "release_negative": self.release_negative.stats(),
        }
