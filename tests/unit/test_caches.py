"""ExpiringCache and Caches: per-entry expiry, LRU bound, honest counters and sizes, growth."""

from __future__ import annotations

import pytest

from backend.services.caches import Caches, ExpiringCache


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_cache(maxsize: int = 10, ttl_s: float = 100.0, clock: FakeClock | None = None) -> ExpiringCache[int, str]:
    return ExpiringCache(maxsize, ttl_s, clock=clock or FakeClock())


class TestExpiry:
    def test_entry_expires_ttl_after_set_and_get_does_not_extend(self) -> None:
        """An entry lives ttl seconds from its set, however often it is read."""
        clock = FakeClock()
        cache = make_cache(ttl_s=100.0, clock=clock)
        cache.set(1, "a")
        clock.now = 50.0
        assert cache.get(1) == "a"
        clock.now = 99.0
        assert cache.get(1) == "a"
        clock.now = 100.5
        assert cache.get(1) is None
        assert 1 not in cache

    def test_each_entry_has_its_own_lifetime(self) -> None:
        """A per-entry ttl overrides the cache's default for that entry only."""
        clock = FakeClock()
        cache = make_cache(ttl_s=100.0, clock=clock)
        cache.set(1, "short", ttl_s=10.0)
        cache.set(2, "default")
        clock.now = 11.0
        assert (cache.get(1), cache.get(2)) == (None, "default")

    def test_set_until_an_absolute_time(self) -> None:
        """set_until keeps an entry until the given clock time."""
        clock = FakeClock()
        cache = make_cache(clock=clock)
        cache.set_until(1, "a", 30.0)
        clock.now = 29.0
        assert cache.peek(1) == "a"
        clock.now = 30.0
        assert cache.peek(1) is None

    @pytest.mark.parametrize("expires_at", [pytest.param(5.0, id="past"), pytest.param(10.0, id="now")])
    def test_setting_an_already_expired_entry_drops_the_old_one(self, expires_at: float) -> None:
        """An expiry at or before now stores nothing and removes the key's previous value."""
        clock = FakeClock()
        cache = make_cache(clock=clock)
        cache.set(1, "old")
        clock.now = 10.0
        cache.set_until(1, "new", expires_at)
        assert 1 not in cache

    def test_len_and_keys_do_not_count_expired_entries(self) -> None:
        """Sizes are honest: expired entries are purged before counting."""
        clock = FakeClock()
        cache = make_cache(ttl_s=5.0, clock=clock)
        cache.set(1, "a")
        cache.set(2, "b", ttl_s=50.0)
        clock.now = 6.0
        assert len(cache) == 1
        assert cache.keys() == [2]


class TestEviction:
    def test_least_recently_used_entry_is_evicted_and_counted(self) -> None:
        """Going past maxsize evicts the least recently used entry and counts one eviction."""
        cache = make_cache(maxsize=2)
        cache.set(1, "a")
        cache.set(2, "b")
        cache.get(1)
        cache.set(3, "c")
        assert 2 not in cache and 1 in cache and 3 in cache
        assert cache.evictions == 1

    def test_expiry_is_not_counted_as_eviction(self) -> None:
        """Entries that expired and are replaced do not count as evictions."""
        clock = FakeClock()
        cache = make_cache(maxsize=2, ttl_s=5.0, clock=clock)
        cache.set(1, "a")
        cache.set(2, "b")
        clock.now = 6.0
        cache.set(3, "c")
        cache.set(4, "d")
        assert cache.evictions == 0
        assert sorted(cache.keys()) == [3, 4]

    def test_overwriting_a_key_evicts_nothing(self) -> None:
        """Setting an existing key in a full cache replaces its value without pushing anything out."""
        cache = make_cache(maxsize=2)
        cache.set(1, "a")
        cache.set(2, "b")
        cache.set(1, "a2")
        assert (cache.peek(1), cache.peek(2), cache.evictions) == ("a2", "b", 0)


class TestCounters:
    def test_get_counts_hits_and_misses(self) -> None:
        """Each get is a hit or a miss; an expired entry is a miss."""
        clock = FakeClock()
        cache = make_cache(ttl_s=10.0, clock=clock)
        cache.set(1, "a")
        cache.get(1)
        cache.get(2)
        clock.now = 11.0
        cache.get(1)
        assert (cache.hits, cache.misses) == (1, 2)

    def test_peek_and_contains_do_not_count(self) -> None:
        """Bookkeeping reads (peek, ``in``) leave the hit and miss counters alone."""
        cache = make_cache()
        cache.set(1, "a")
        assert cache.peek(1) == "a" and cache.peek(2) is None
        assert 1 in cache and 2 not in cache
        assert (cache.hits, cache.misses) == (0, 0)

    def test_stats(self) -> None:
        """stats() reports size, bound, evictions, hits and misses."""
        cache = make_cache(maxsize=2)
        for key in (1, 2, 3):
            cache.set(key, "x")
        cache.get(3)
        cache.get(1)
        assert cache.stats() == {"size": 2, "maxsize": 2, "evictions": 1, "hits": 1, "misses": 1}

    def test_delete_reports_presence(self) -> None:
        """delete says whether the key was there."""
        cache = make_cache()
        cache.set(1, "a")
        assert cache.delete(1) is True
        assert cache.delete(1) is False

    def test_clear_empties_the_cache(self) -> None:
        """clear drops every entry."""
        cache = make_cache()
        cache.set(1, "a")
        cache.set(2, "b")
        cache.clear()
        assert len(cache) == 0


class TestGrowth:
    def test_grow_to_hold_fits_that_many_entries_without_eviction(self) -> None:
        """After growing to hold N entries, N entries fit without any eviction."""
        cache = make_cache(maxsize=10)
        cache.grow_to_hold(300)
        assert cache.maxsize >= 300
        for key in range(300):
            cache.set(key, "x")
        assert (len(cache), cache.evictions) == (300, 0)

    def test_growth_keeps_entries_their_values_and_expiry(self) -> None:
        """Growing keeps every live entry with its value and its original expiry time."""
        clock = FakeClock()
        cache = make_cache(maxsize=3, ttl_s=100.0, clock=clock)
        cache.set(1, "a", ttl_s=10.0)
        cache.set(2, "b")
        cache.set(3, "c")
        cache.grow_to_hold(50)
        assert [cache.peek(k) for k in (1, 2, 3)] == ["a", "b", "c"]
        clock.now = 11.0
        assert (cache.peek(1), cache.peek(2)) == (None, "b")
        clock.now = 101.0
        assert len(cache) == 0

    def test_growth_keeps_recency_order(self) -> None:
        """The least recently used entry before growing is still the first to go after it."""
        cache = make_cache(maxsize=2)
        cache.set(1, "a")
        cache.set(2, "b")
        cache.get(1)  # 2 is now least recently used
        cache.grow_to_hold(10)
        assert cache.maxsize >= 10
        for key in range(10, 10 + cache.maxsize - 1):  # one more than fits beside 1 and 2
            cache.set(key, "x")
        assert 2 not in cache and 1 in cache

    def test_never_shrinks(self) -> None:
        """Asking for a bound at or below the current one changes nothing and keeps every entry."""
        cache = make_cache(maxsize=40)
        for key in range(40):
            cache.set(key, "x")
        cache.resize(1)
        cache.resize(40)
        cache.grow_to_hold(10)
        assert (cache.maxsize, len(cache), cache.evictions) == (40, 40, 0)

    def test_evictions_are_kept_across_growth(self) -> None:
        """The eviction counter keeps counting through a resize."""
        cache = make_cache(maxsize=1)
        cache.set(1, "a")
        cache.set(2, "b")
        assert cache.evictions == 1
        cache.grow_to_hold(5)
        assert cache.evictions == 1
        for key in range(10, 10 + cache.maxsize):  # one more than fits beside entry 2
            cache.set(key, "x")
        assert cache.evictions == 2


class TestCaches:
    def test_stats_reports_every_cache(self) -> None:
        """Caches.stats() has one entry per cache, each with that cache's own counters."""
        caches = Caches(
            rotation=ExpiringCache(5, 100),
            cold=ExpiringCache(3, 100),
            release_positive=ExpiringCache(7, 100),
            release_negative=ExpiringCache(9, 100),
        )
        caches.cold.get(1)
        stats = caches.stats()
        assert set(stats) == {"rotation", "cold", "release_positive", "release_negative"}
        assert [stats[name]["maxsize"] for name in ("rotation", "cold", "release_positive", "release_negative")] == [
            5,
            3,
            7,
            9,
        ]
        assert (stats["cold"]["misses"], stats["rotation"]["misses"]) == (1, 0)
