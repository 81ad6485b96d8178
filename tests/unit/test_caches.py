"""ExpiringCache: TTL from set, LRU bound, honest sizes, growth."""

from __future__ import annotations

from backend.services.caches import ExpiringCache


class TestExpiringCache:
    def test_entry_expires_ttl_after_set_and_get_does_not_extend(self) -> None:
        """An entry lives exactly ttl seconds from its set, however often it is read."""
        now = [0.0]
        cache: ExpiringCache[int, str] = ExpiringCache(10, 100, clock=lambda: now[0])
        cache.set(1, "a")
        now[0] = 99.0
        assert cache.get(1) == "a"
        now[0] = 100.5
        assert cache.get(1) is None and 1 not in cache

    def test_len_does_not_count_expired_entries(self) -> None:
        """Sizes are honest: expired entries are purged before counting."""
        now = [0.0]
        cache: ExpiringCache[int, int] = ExpiringCache(10, 5, clock=lambda: now[0])
        cache.set(1, 1)
        cache.set(2, 2)
        now[0] = 6.0
        assert len(cache) == 0 and cache.items() == []

    def test_lru_eviction_is_counted(self) -> None:
        """Going past maxsize evicts the least recently used entry and counts it."""
        cache: ExpiringCache[int, int] = ExpiringCache(2, 100)
        cache.set(1, 1)
        cache.set(2, 2)
        cache.get(1)
        cache.set(3, 3)
        assert 2 not in cache and 1 in cache and 3 in cache
        assert cache.stats() == {"size": 2, "maxsize": 2, "evictions": 1}

    def test_resize_grows_and_keeps_entries(self) -> None:
        """Growing the bound keeps every live entry; shrinking is ignored."""
        cache: ExpiringCache[int, int] = ExpiringCache(2, 100)
        cache.update([(1, 1), (2, 2)])
        cache.resize(5)
        cache.resize(1)
        cache.update([(3, 3), (4, 4)])
        assert cache.maxsize == 5 and len(cache) == 4

    def test_growth_is_at_least_geometric(self) -> None:
        """Growing by one entry doubles the bound, so a slowly growing cache is rebuilt rarely."""
        cache: ExpiringCache[int, int] = ExpiringCache(100, 100)
        cache.resize(101)
        assert cache.maxsize == 200

    def test_delete_reports_presence(self) -> None:
        """delete says whether the key was there."""
        cache: ExpiringCache[int, int] = ExpiringCache(2, 100)
        cache.set(1, 1)
        assert cache.delete(1) is True and cache.delete(1) is False
