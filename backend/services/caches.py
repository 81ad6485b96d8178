"""Bounded TTL caches (cachetools) with an injectable clock and honest sizes."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class ExpiringCache(Generic[K, V]):
    """An LRU cache whose entries expire ``ttl_s`` after they were set.

    Values must be immutable (tuples, frozen dataclasses): callers share them by reference.

    Args:
        maxsize: entries kept before the least recently used one is evicted.
        ttl_s: seconds an entry lives, counted from ``set``; ``get`` does not extend it.
        clock: monotonic seconds; tests inject a fake one.
    """

    def __init__(self, maxsize: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=ttl_s, timer=clock)
        self.evictions = 0

    @property
    def maxsize(self) -> int:
        return int(self._cache.maxsize)

    def get(self, key: K) -> V | None:
        """Return the live value for ``key`` or None."""
        value = self._cache.get(key, _MISSING)
        return None if value is _MISSING else value  # type: ignore[return-value]

    def __contains__(self, key: K) -> bool:
        return self._cache.get(key, _MISSING) is not _MISSING

    def set(self, key: K, value: V) -> None:
        self._cache.expire()
        if key not in self._cache and len(self._cache) >= self._cache.maxsize:
            self.evictions += 1
        self._cache[key] = value

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
        return list(self._cache.items())

    def __len__(self) -> int:
        self._cache.expire()
        return len(self._cache)

    def resize(self, maxsize: int) -> None:
        """Grow (never shrink) the bound, keeping every live entry."""
        if maxsize <= self._cache.maxsize:
            return
        old = self._cache
        old.expire()
        new: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=self._ttl_s, timer=self._clock)
        # Re-insert oldest first so recency survives; remaining TTL is reset, which only lengthens it.
        for key, value in list(old.items()):
            new[key] = value
        self._cache = new

    def stats(self) -> dict[str, int]:
        return {"size": len(self), "maxsize": self.maxsize, "evictions": self.evictions}
