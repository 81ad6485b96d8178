"""Unit tests for the LML lookup coordinator (single-flight plus a short TTL cache)."""

from __future__ import annotations

import asyncio

import pytest

from backend.clients.lml import LookupResponse
from backend.errors import LmlTimeoutError, LmlUnavailableError
from backend.services.lookup_coordinator import LookupCoordinator, lookup_key


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_response(**overrides: object) -> LookupResponse:
    fields: dict[str, object] = {
        "search_type": "direct",
        "result_count": 1,
        "top_release_id": 4080,
        "top_tracklist": None,
        "timeout": False,
        "degraded": False,
    }
    fields.update(overrides)
    return LookupResponse(**fields)  # type: ignore[arg-type]


class FakeLml:
    """Records calls; each returns a fresh response object, optionally after a gate opens."""

    def __init__(self, *, error: Exception | None = None, response: LookupResponse | None = None) -> None:
        self.calls: list[tuple[str | None, str, str]] = []
        self.gate: asyncio.Event | None = None
        self.error = error
        self.response = response

    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse:
        self.calls.append((artist, album, priority))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.response or make_response()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def gated(**kwargs: object) -> FakeLml:
    lml = FakeLml(**kwargs)  # type: ignore[arg-type]
    lml.gate = asyncio.Event()
    return lml


class TestLookupKey:
    @pytest.mark.parametrize(
        ("a", "b"),
        [
            pytest.param(("Autechre", "Confield"), ("autechre", "CONFIELD"), id="case"),
            pytest.param(("  Autechre ", "Confield\t"), ("Autechre", "Confield"), id="trim"),
            pytest.param(("Boards of  Canada", "Geogaddi"), ("boards of canada", "geogaddi"), id="runs"),
            pytest.param((None, "Nuggets"), ("", "Nuggets"), id="none-is-empty"),
            pytest.param((None, "Nuggets"), ("   ", "nuggets"), id="none-is-whitespace"),
        ],
    )
    def test_equivalent_spellings_share_a_key(self, a: tuple[str | None, str], b: tuple[str | None, str]) -> None:
        """Case, surrounding and repeated whitespace, and a missing artist do not change the key."""
        assert lookup_key(*a) == lookup_key(*b)

    def test_missing_part_is_the_empty_marker(self) -> None:
        """A missing part normalises to the ∅ marker."""
        assert lookup_key(None, "Nuggets") == ("∅", "nuggets")

    def test_separator_in_a_title_does_not_collide(self) -> None:
        """A "|" inside a title cannot make two different lookups share a key."""
        assert lookup_key("a|b", "c") != lookup_key("a", "b|c")


class TestLookupCoordinator:
    @pytest.mark.parametrize("n", [pytest.param(2, id="two"), pytest.param(3, id="three")])
    async def test_concurrent_identical_lookups_share_one_call(self, n: int) -> None:
        """Overlapping lookups for the same key make one client call and get the same object."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        tasks = [asyncio.ensure_future(coordinator.lookup("Autechre", "Confield")) for _ in range(n)]
        await settle()
        assert coordinator.stats()["inflight"] == 1
        assert lml.gate is not None
        lml.gate.set()
        results = await asyncio.gather(*tasks)
        assert len(lml.calls) == 1
        assert all(r is results[0] for r in results)

    async def test_first_callers_spelling_goes_on_the_wire(self) -> None:
        """Coalesced callers with other spellings share the first caller's request."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        first = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        second = asyncio.ensure_future(coordinator.lookup(" AUTECHRE ", "confield"))
        await settle()
        assert lml.gate is not None
        lml.gate.set()
        assert await first is await second
        assert lml.calls == [("Autechre", "Confield", "live")]

    async def test_different_keys_do_not_coalesce(self) -> None:
        """Lookups for different albums each make their own call."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        tasks = [
            asyncio.ensure_future(coordinator.lookup("Autechre", "Confield")),
            asyncio.ensure_future(coordinator.lookup("Autechre", "Draft 7.30")),
            asyncio.ensure_future(coordinator.lookup(None, "Confield")),
        ]
        await settle()
        assert lml.gate is not None
        lml.gate.set()
        await asyncio.gather(*tasks)
        assert len(lml.calls) == 3

    async def test_cached_answer_is_returned_without_a_call(self) -> None:
        """A repeat lookup within the TTL is served from the cache."""
        lml = FakeLml()
        coordinator = LookupCoordinator(lml, clock=FakeClock())
        first = await coordinator.lookup("Autechre", "Confield")
        second = await coordinator.lookup("autechre", "confield")
        assert second is first
        assert len(lml.calls) == 1
        assert coordinator.stats() == {"size": 1, "inflight": 0}

    async def test_refetches_after_ttl(self) -> None:
        """Once the TTL has passed the next lookup calls LML again."""
        clock = FakeClock()
        lml = FakeLml()
        coordinator = LookupCoordinator(lml, ttl_s=300, clock=clock)
        await coordinator.lookup("Autechre", "Confield")
        clock.now = 299.0
        await coordinator.lookup("Autechre", "Confield")
        assert len(lml.calls) == 1
        clock.now = 300.0
        await coordinator.lookup("Autechre", "Confield")
        assert len(lml.calls) == 2

    async def test_clear_drops_cached_answers(self) -> None:
        """clear() empties the cache so the next lookup calls LML."""
        lml = FakeLml()
        coordinator = LookupCoordinator(lml)
        await coordinator.lookup("Autechre", "Confield")
        coordinator.clear()
        assert coordinator.stats()["size"] == 0
        await coordinator.lookup("Autechre", "Confield")
        assert len(lml.calls) == 2

    async def test_errors_reach_every_waiter_and_are_not_cached(self) -> None:
        """A failed call raises in every coalesced waiter, clears the in-flight entry and caches nothing."""
        error = LmlUnavailableError("LML responded with 503: Service Unavailable")
        lml = gated(error=error)
        coordinator = LookupCoordinator(lml)
        tasks = [asyncio.ensure_future(coordinator.lookup("Autechre", "Confield")) for _ in range(3)]
        await settle()
        assert lml.gate is not None
        lml.gate.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(o is error for o in outcomes)
        assert coordinator.stats() == {"size": 0, "inflight": 0}
        lml.error = None
        await coordinator.lookup("Autechre", "Confield")
        assert len(lml.calls) == 2

    @pytest.mark.parametrize(
        "response",
        [
            pytest.param(make_response(timeout=True, result_count=0, top_release_id=None), id="timeout"),
            pytest.param(make_response(degraded=True, result_count=0, top_release_id=None), id="degraded-empty"),
        ],
    )
    async def test_transient_answers_are_returned_but_not_cached(self, response: LookupResponse) -> None:
        """An LML timeout or an empty degraded answer is not remembered: the next lookup asks again."""
        lml = FakeLml(response=response)
        coordinator = LookupCoordinator(lml)
        assert await coordinator.lookup("Autechre", "Confield") is response
        await coordinator.lookup("Autechre", "Confield")
        assert len(lml.calls) == 2

    async def test_degraded_answer_with_results_is_cached(self) -> None:
        """A degraded answer that still has results is a usable answer and is cached."""
        lml = FakeLml(response=make_response(degraded=True))
        coordinator = LookupCoordinator(lml)
        await coordinator.lookup("Autechre", "Confield")
        await coordinator.lookup("Autechre", "Confield")
        assert len(lml.calls) == 1

    async def test_cancelled_waiter_does_not_cancel_the_shared_call(self) -> None:
        """Cancelling one waiter leaves the shared call running for the others."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        first = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        second = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        await settle()
        first.cancel()
        await settle()
        assert lml.gate is not None
        lml.gate.set()
        result = await second
        assert result.top_release_id == 4080
        assert first.cancelled()
        assert len(lml.calls) == 1
        assert coordinator.stats() == {"size": 1, "inflight": 0}

    async def test_call_finishes_and_caches_when_every_waiter_is_cancelled(self) -> None:
        """The shared call completes and caches even if all its waiters went away."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        waiter = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        await settle()
        waiter.cancel()
        assert lml.gate is not None
        lml.gate.set()
        await settle()
        assert coordinator.stats() == {"size": 1, "inflight": 0}

    async def test_error_with_every_waiter_cancelled_is_dropped_quietly(self) -> None:
        """A call that fails after all its waiters were cancelled clears its entry and caches nothing."""
        lml = gated(error=LmlTimeoutError())
        coordinator = LookupCoordinator(lml)
        waiter = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        await settle()
        waiter.cancel()
        assert lml.gate is not None
        lml.gate.set()
        await settle()
        assert coordinator.stats() == {"size": 0, "inflight": 0}

    async def test_priority_is_passed_to_the_client(self) -> None:
        """The caller's priority goes to the client."""
        lml = FakeLml()
        coordinator = LookupCoordinator(lml)
        await coordinator.lookup("Autechre", "Confield", priority="warm")
        assert lml.calls == [("Autechre", "Confield", "warm")]

    async def test_warm_caller_joins_a_live_call(self) -> None:
        """A warm lookup coalesces onto an in-flight live call."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        live = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        warm = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield", priority="warm"))
        await settle()
        assert lml.gate is not None
        lml.gate.set()
        assert await live is await warm
        assert len(lml.calls) == 1

    async def test_live_caller_does_not_wait_on_a_warm_call(self) -> None:
        """A live lookup starts its own call rather than wait behind a warm one; later callers join it."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        warm = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield", priority="warm"))
        await settle()
        live = [asyncio.ensure_future(coordinator.lookup("Autechre", "Confield")) for _ in range(2)]
        await settle()
        assert [c[2] for c in lml.calls] == ["warm", "live"]
        assert lml.gate is not None
        lml.gate.set()
        first_live, second_live = await asyncio.gather(*live)
        assert first_live is second_live
        await warm
        assert coordinator.stats() == {"size": 1, "inflight": 0}

    async def test_aclose_cancels_inflight_calls(self) -> None:
        """aclose() cancels the shared calls and clears the in-flight table."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        waiter = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        await settle()
        await coordinator.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert coordinator.stats() == {"size": 0, "inflight": 0}

    async def test_call_cancelled_before_it_starts_leaves_no_inflight_entry(self) -> None:
        """A shared call cancelled before its first step still clears its in-flight entry."""
        lml = gated()
        coordinator = LookupCoordinator(lml)
        waiter = asyncio.ensure_future(coordinator.lookup("Autechre", "Confield"))
        await asyncio.sleep(0)  # the waiter has created the shared call, which has not run yet
        assert coordinator.stats()["inflight"] == 1
        await coordinator.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert lml.calls == []
        assert coordinator.stats() == {"size": 0, "inflight": 0}
