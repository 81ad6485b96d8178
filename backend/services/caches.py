"""Bounded LRU caches with per-entry expiry (cachetools.TLRUCache), an injectable clock and honest sizes."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from cachetools import TLRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()

# Caches sized from a row count get this much headroom (they only ever grow).
SIZE_HEADROOM = 1.25


def _expiry(_key: object, entry: tuple[float, float, object], _now: float) -> float:
    return entry[0]


class _CountingTLRU(TLRUCache):  # type: ignore[type-arg]
    """cachetools evicts through ``popitem`` (expiry does not), so counting there is exact."""

    evictions = 0

    def popitem(self) -> tuple[Any, Any]:
        self.evictions += 1
        return super().popitem()


class ExpiringCache(Generic[K, V]):
    """An LRU cache whose entries expire at a time fixed when they are set.

    Values must be immutable (tuples, frozen dataclasses): callers share them by reference.

    Args:
        maxsize: entries kept before the least recently used one is evicted.
        ttl_s: default lifetime, counted from ``set``; ``get`` does not extend it.
        clock: monotonic seconds; tests inject a fake one. On Linux ``time.monotonic`` is
            system-wide, so an expiry computed in one process is valid in another on the host.
    """

    def __init__(self, maxsize: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        # Entries are (expires_at, set_at, value); set_at lets a refresh walk ignore older entries.
        self._cache: TLRUCache[K, tuple[float, float, V]] = _CountingTLRU(maxsize=maxsize, ttu=_expiry, timer=clock)
        self._evictions_before = 0  # evictions counted by caches replaced on resize

    @property
    def maxsize(self) -> int:
        return int(self._cache.maxsize)

    def now(self) -> float:
        return self._clock()

    def get(self, key: K, *, fresh_after: float | None = None) -> V | None:
        """Return the live value for ``key`` or None.

        Args:
            key: the key.
            fresh_after: treat entries set before this monotonic time as missing (refresh walks).
        """
        entry = self._cache.get(key)
        if entry is None:
            return None
        if fresh_after is not None and entry[1] < fresh_after:
            return None
        return entry[2]

    def get_with_expiry(self, key: K) -> tuple[float, V] | None:
        """Return ``(expires_at, value)`` for a live entry, or None."""
        entry = self._cache.get(key)
        return None if entry is None else (entry[0], entry[2])

    def __contains__(self, key: K) -> bool:
        return self._cache.get(key, _MISSING) is not _MISSING

    def set(self, key: K, value: V, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` seconds (default: the cache's TTL)."""
        self.set_until(key, value, self._clock() + (self.ttl_s if ttl_s is None else ttl_s))

    def set_until(self, key: K, value: V, expires_at: float) -> None:
        """Store ``value`` until the monotonic time ``expires_at`` (ignored if already past)."""
        now = self._clock()
        if expires_at <= now:
            self._cache.pop(key, None)
            return
        self._cache[key] = (expires_at, now, value)  # expires stale entries, then evicts LRU if full

    @property
    def evictions(self) -> int:
        """Live entries pushed out because the cache was full (never expiries)."""
        return self._evictions_before + int(getattr(self._cache, "evictions", 0))

    def update(self, items: Iterable[tuple[K, V]]) -> None:
        for key, value in items:
            self.set(key, value)

    def delete(self, key: K) -> bool:
        """Drop ``key``; return whether it was present."""
        return self._cache.pop(key, _MISSING) is not _MISSING

    def clear(self) -> None:
        self._cache.clear()

    def items(self) -> list[tuple[K, V]]:
        """Live entries (expired ones are purged first)."""
        self._cache.expire()
        return [(k, entry[2]) for k, entry in self._cache.items()]

    def __len__(self) -> int:
        self._cache.expire()
        return len(self._cache)

    def resize(self, maxsize: int) -> None:
        """Grow (never shrink) the bound, keeping every live entry and its expiry.

        Growth is at least geometric (x2), so many small increments rebuild the cache O(log n)
        times, not once per increment.
        """
        if maxsize <= self._cache.maxsize:
            return
        maxsize = max(maxsize, 2 * int(self._cache.maxsize))
        old = self._cache
        old.expire()
        self._evictions_before = self.evictions
        new: TLRUCache[K, tuple[float, float, V]] = _CountingTLRU(maxsize=maxsize, ttu=_expiry, timer=self._clock)
        for key, entry in list(old.items()):  # least recently used first, so recency survives
            new[key] = entry
        self._cache = new

    def grow_to_hold(self, entries: int) -> None:
        """Grow the bound so ``entries`` fit with headroom (a walk sizes caches from its row count)."""
        self.resize(int(entries * SIZE_HEADROOM))

    def stats(self) -> dict[str, int]:
        return {"size": len(self), "maxsize": self.maxsize, "evictions": self.evictions}
