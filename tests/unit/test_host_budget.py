"""Unit tests for the host-wide LML budget in one process (real processes: tests/integration)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing.synchronize
import os
import types
from typing import TypeVar, cast

import pytest

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.errors import LimiterShedError
from tests.unit.fakes import VirtualTime, finished, settle

T = TypeVar("T")

# Above Linux's PID_MAX_LIMIT (2**22): no process can have this pid, so it stands for a dead holder.
UNUSED_PID = 2**31 - 1


async def sleep_forever(seconds: float) -> None:
    """The sleep of a process that never wakes again."""
    await asyncio.Event().wait()


class PollOnlyLock:
    """A host lock that another process may hold; a blocking acquire fails the test instead of freezing the loop."""

    def __init__(self) -> None:
        self.holder: str | None = None

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        if block:
            raise AssertionError("blocking acquire of the host lock on the event loop")
        if self.holder is not None:
            return False
        self.holder = "us"
        return True

    def release(self) -> None:
        if self.holder is None:
            raise ValueError("semaphore or lock released too many times")
        self.holder = None


def make_budget(
    shared: HostBudgetShared,
    vt: VirtualTime | None = None,
    *,
    pid: int | None = None,
    stale_lock_s: float = 2.0,
) -> HostBudget:
    """A budget on ``vt``'s clock whose sleeps end when the test advances that clock."""
    vt = vt or VirtualTime()
    return HostBudget(shared, clock=vt.clock, sleep=vt.sleep, pid=pid, stale_lock_s=stale_lock_s)


class TestSharedState:
    def test_create_starts_free_and_full(self) -> None:
        """A new budget has every permit free and a full bucket."""
        budget = make_budget(HostBudgetShared.create(3, 50))
        assert budget.snapshot() == {"in_use": 0, "max_concurrent": 3, "live_waiting": 0, "tokens": 50}

    @pytest.mark.parametrize(
        ("max_concurrent", "rate_per_min", "max_processes"),
        [
            pytest.param(0, 50, 64, id="no-permits"),
            pytest.param(1, 0, 64, id="no-rate"),
            pytest.param(1, 50, 0, id="no-processes"),
        ],
    )
    def test_create_rejects_sizes_below_one(self, max_concurrent: int, rate_per_min: int, max_processes: int) -> None:
        """Permits, rate and process slots must each be at least one."""
        with pytest.raises(ValueError, match=">= 1"):
            HostBudgetShared.create(max_concurrent, rate_per_min, max_processes=max_processes)

    def test_shared_ctx_round_trip(self) -> None:
        """The primitives are stored as separate attributes and read back; absent means None."""
        shared = HostBudgetShared.create(2, 10)
        ctx = types.SimpleNamespace()
        shared.to_shared_ctx(ctx, "budget")
        assert vars(ctx).keys() == {"budget_lock", "budget_permits", "budget_state", "budget_waiters"}
        assert all(type(v).__module__.startswith("multiprocessing") for v in vars(ctx).values())
        assert HostBudgetShared.from_shared_ctx(ctx, "budget") == shared
        assert HostBudgetShared.from_shared_ctx(types.SimpleNamespace(), "budget") is None


class TestPermits:
    async def test_max_concurrent_is_respected_and_release_frees(self) -> None:
        """Only max_concurrent permits are handed out; a released one is handed out again."""
        vt = VirtualTime()
        budget = make_budget(HostBudgetShared.create(2, 50), vt)
        first = await budget.acquire("live", None)
        second = await budget.acquire("live", None)
        assert {first, second} == {0, 1}
        third = asyncio.ensure_future(budget.acquire("live", vt.now + 1.0))
        await vt.advance(1.0)
        with pytest.raises(LimiterShedError) as info:
            await finished(third)
        assert info.value.reason == "shed_limiter_saturated"
        assert budget.snapshot()["in_use"] == 2
        budget.release(first)
        assert budget.snapshot()["in_use"] == 1
        assert await budget.acquire("live", vt.now) == first

    async def test_free_permit_is_tried_once_even_past_the_deadline(self) -> None:
        """A deadline already in the past still gets a free permit."""
        vt = VirtualTime()
        budget = make_budget(HostBudgetShared.create(1, 50), vt)
        assert await budget.acquire("live", vt.now - 1.0) == 0

    async def test_waiter_gets_a_permit_released_by_another_process(self) -> None:
        """A live caller polls until another process releases a permit, well within its deadline."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 50)
        other = make_budget(shared, vt, pid=os.getppid())
        budget = make_budget(shared, vt)
        held = await other.acquire("live", None)
        waiter = asyncio.ensure_future(budget.acquire("live", vt.now + 5.0))
        await vt.advance(1.0)
        assert not waiter.done()
        other.release(held)
        await vt.advance(0.05)
        assert await finished(waiter) == held
        assert list(shared.permits) == [os.getpid()]

    async def test_permit_of_a_dead_process_is_reclaimed_only_when_none_is_free(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A permit held by a pid that no longer exists is taken over, with a warning, once every permit is in use."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(2, 50)
        ghost = make_budget(shared, vt, pid=UNUSED_PID)
        assert await ghost.acquire("live", None) == 0
        budget = make_budget(shared, vt)
        assert await budget.acquire("live", vt.now) == 1  # a free one first
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            assert await budget.acquire("live", vt.now) == 0  # then the dead pid's
        assert list(shared.permits) == [os.getpid(), os.getpid()]
        assert f"held by dead pid {UNUSED_PID}" in caplog.text

    async def test_permits_of_live_processes_are_never_reclaimed(self) -> None:
        """A permit whose holder is alive stays with it, however long it is held."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 50)
        await make_budget(shared, vt, pid=os.getppid()).acquire("live", None)
        waiter = asyncio.ensure_future(make_budget(shared, vt).acquire("live", vt.now + 5.0))
        await vt.advance(5.0)
        with pytest.raises(LimiterShedError):
            await finished(waiter)
        assert list(shared.permits) == [os.getppid()]

    async def test_release_of_a_permit_owned_by_someone_else_is_ignored(self, caplog: pytest.LogCaptureFixture) -> None:
        """Releasing an index this pid does not own leaves the permit with its owner and warns."""
        shared = HostBudgetShared.create(1, 50)
        budget = make_budget(shared)
        other = make_budget(shared, pid=os.getppid())
        index = await budget.acquire("live", None)
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            other.release(index)
        assert budget.snapshot()["in_use"] == 1
        assert "owned by" in caplog.text

    async def test_unknown_priority_is_rejected(self) -> None:
        """Only "live" and "warm" are priorities."""
        budget = make_budget(HostBudgetShared.create(1, 50))
        with pytest.raises(ValueError, match="priority"):
            await budget.acquire("urgent", None)


class TestPriority:
    async def test_warm_waits_while_a_live_caller_is_registered(self) -> None:
        """A warm caller leaves a free permit alone while a live caller waits, and gets it after."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 50)
        holder, live_budget, warm_budget = make_budget(shared, vt), make_budget(shared, vt), make_budget(shared, vt)
        held = await holder.acquire("live", None)
        live = asyncio.ensure_future(live_budget.acquire("live", None))
        await vt.advance(0.0001)
        assert holder.snapshot()["live_waiting"] == 1
        holder.release(held)
        warm = asyncio.ensure_future(warm_budget.acquire("warm", None))
        await settle()
        assert not warm.done()
        assert holder.snapshot()["in_use"] == 0  # free, yet the warm caller did not take it
        await vt.advance(0.01)
        live_index = await finished(live)
        assert holder.snapshot()["live_waiting"] == 0
        await vt.advance(0.05)
        assert not warm.done()  # the live caller holds the only permit now
        live_budget.release(live_index)
        await vt.advance(0.05)
        assert await finished(warm) == live_index

    async def test_warm_ignores_live_registrations_of_dead_processes(self, caplog: pytest.LogCaptureFixture) -> None:
        """Live-waiter registrations left by a dead process are dropped instead of starving warm callers."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 50)
        holder = make_budget(shared, vt, pid=os.getppid())
        held = await holder.acquire("live", None)
        # Waiters of a process that dies mid-wait: registered, never polling again, never deregistering.
        ghost = HostBudget(shared, clock=vt.clock, sleep=sleep_forever, pid=UNUSED_PID)
        ghost_waiters = [asyncio.ensure_future(ghost.acquire("live", None)) for _ in range(3)]
        await settle()
        budget = make_budget(shared, vt)
        assert budget.snapshot()["live_waiting"] == 3
        holder.release(held)
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            assert await budget.acquire("warm", vt.now) == 0
        assert budget.snapshot()["live_waiting"] == 0
        assert f"dead pid {UNUSED_PID}" in caplog.text
        for task in ghost_waiters:
            task.cancel()
        await asyncio.gather(*ghost_waiters, return_exceptions=True)

    async def test_live_callers_are_not_held_back_by_each_other(self) -> None:
        """A registered live waiter does not stop another live caller from taking a free permit."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(2, 50)
        holder, first, second = make_budget(shared, vt), make_budget(shared, vt), make_budget(shared, vt)
        held = [await holder.acquire("live", None), await holder.acquire("live", None)]
        waiter = asyncio.ensure_future(first.acquire("live", None))
        await vt.advance(0.0001)
        holder.release(held[0])
        assert await second.acquire("live", vt.now) == held[0]
        holder.release(held[1])
        await vt.advance(0.05)
        assert await finished(waiter) == held[1]


class TestWaitingEnds:
    async def test_deadline_sheds_and_unregisters(self) -> None:
        """Past its deadline a live caller is shed and no longer counted as waiting."""
        vt = VirtualTime()
        budget = make_budget(HostBudgetShared.create(1, 50), vt)
        await budget.acquire("live", None)
        waiter = asyncio.ensure_future(budget.acquire("live", vt.now + 0.5))
        await vt.advance(0.45)
        assert not waiter.done()
        assert budget.snapshot()["live_waiting"] == 1
        await vt.advance(0.05)
        with pytest.raises(LimiterShedError, match="shed_limiter_saturated"):
            await finished(waiter)
        assert budget.snapshot()["live_waiting"] == 0
        assert budget.snapshot()["in_use"] == 1

    @pytest.mark.parametrize("priority", [pytest.param("live", id="live"), pytest.param("warm", id="warm")])
    async def test_cancellation_leaves_counts_consistent(self, priority: str) -> None:
        """A caller cancelled while waiting leaves no registration and no permit behind."""
        vt = VirtualTime()
        budget = make_budget(HostBudgetShared.create(1, 50), vt)
        held = await budget.acquire("live", None)
        waiter = asyncio.ensure_future(budget.acquire(priority, None))
        await vt.advance(0.001)
        assert budget.snapshot()["live_waiting"] == (1 if priority == "live" else 0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finished(waiter)
        assert budget.snapshot()["live_waiting"] == 0
        assert budget.snapshot()["in_use"] == 1
        budget.release(held)
        assert budget.snapshot()["in_use"] == 0

    async def test_cancelled_live_waiter_deregisters_without_blocking_the_loop(self) -> None:
        """While another process holds the lock, a cancelled live waiter polls for it to deregister."""
        vt = VirtualTime()
        lock = PollOnlyLock()
        shared = dataclasses.replace(
            HostBudgetShared.create(1, 50), lock=cast("multiprocessing.synchronize.Lock", lock)
        )
        budget = make_budget(shared, vt)
        await budget.acquire("live", None)
        waiter = asyncio.ensure_future(budget.acquire("live", None))
        await vt.advance(0.001)
        lock.holder = "another process"
        waiter.cancel()
        await vt.advance(0.01)
        assert not waiter.done()  # still polling the lock, and the loop keeps running
        assert budget.snapshot()["live_waiting"] == 1
        lock.holder = None
        await vt.advance(0.001)
        with pytest.raises(asyncio.CancelledError):
            await finished(waiter)
        assert budget.snapshot()["live_waiting"] == 0

    async def test_second_cancellation_does_not_leave_the_registration_behind(self) -> None:
        """Cancelling a waiter again while it deregisters still ends with no registration left."""
        vt = VirtualTime()
        lock = PollOnlyLock()
        shared = dataclasses.replace(
            HostBudgetShared.create(1, 50), lock=cast("multiprocessing.synchronize.Lock", lock)
        )
        budget = make_budget(shared, vt)
        await budget.acquire("live", None)
        waiter = asyncio.ensure_future(budget.acquire("live", None))
        await vt.advance(0.001)
        lock.holder = "another process"
        waiter.cancel()
        await vt.advance(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finished(waiter)
        lock.holder = None
        await vt.advance(0.001)
        assert budget.snapshot()["live_waiting"] == 0


class TestTokenBucket:
    async def test_try_take_returns_zero_until_empty_then_the_wait(self) -> None:
        """A token is taken (0 returned) while one is there; then the seconds to the next one are returned."""
        budget = make_budget(HostBudgetShared.create(1, 60))  # one token a second
        assert [await budget.try_take_token() for _ in range(60)] == [0.0] * 60
        assert await budget.try_take_token() == pytest.approx(1.0)
        assert budget.snapshot()["tokens"] == 0

    async def test_keep_leaves_tokens_in_the_bucket(self) -> None:
        """With ``keep`` a take only succeeds if more than ``keep`` tokens remain after it."""
        budget = make_budget(HostBudgetShared.create(1, 6))  # one token every 10 s
        assert [await budget.try_take_token(3) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert await budget.try_take_token(3) == pytest.approx(10.0)
        assert await budget.try_take_token() == 0.0
        assert await budget.try_take_token(3) == pytest.approx(20.0)

    async def test_refills_continuously_up_to_capacity(self) -> None:
        """Tokens come back at rate_per_min per minute, pro rata, and never exceed the capacity."""
        vt = VirtualTime()
        budget = make_budget(HostBudgetShared.create(1, 60), vt)
        for _ in range(60):
            await budget.try_take_token()
        vt.now += 0.5
        assert budget.snapshot()["tokens"] == 0.5
        vt.now += 10.0
        assert budget.snapshot()["tokens"] == 10.5
        vt.now += 3600.0
        assert budget.snapshot()["tokens"] == 60

    async def test_processes_share_the_bucket(self) -> None:
        """Tokens taken by one process are gone for the others."""
        shared = HostBudgetShared.create(1, 2)
        first, second = make_budget(shared), make_budget(shared, pid=os.getppid())
        assert await first.try_take_token() == 0.0
        assert await second.try_take_token() == 0.0
        assert await first.try_take_token() > 0


class TestStaleLock:
    async def test_lock_held_by_a_dead_holder_is_recovered(self, caplog: pytest.LogCaptureFixture) -> None:
        """A lock nobody can take for stale_lock_s is force-released with a warning."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 50)
        assert shared.lock.acquire(block=False)  # the "SIGKILLed" holder never releases it
        budget = make_budget(shared, vt, stale_lock_s=0.05)
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            waiter = asyncio.ensure_future(budget.acquire("live", None))
            await vt.advance(0.04)
            assert not waiter.done()
            await vt.advance(0.02)
            assert await finished(waiter) == 0
        assert "assuming a dead holder" in caplog.text
        assert shared.lock.acquire(block=False)  # released again after the critical section
        shared.lock.release()

    async def test_lock_released_in_time_is_not_forced(self, caplog: pytest.LogCaptureFixture) -> None:
        """A holder that releases the lock before stale_lock_s is waited for, not overridden."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 50)
        assert shared.lock.acquire(block=False)
        budget = make_budget(shared, vt, stale_lock_s=0.05)
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            waiter = asyncio.ensure_future(budget.acquire("live", None))
            await vt.advance(0.04)
            assert not waiter.done()
            shared.lock.release()
            await vt.advance(0.01)
            assert await finished(waiter) == 0
        assert "assuming a dead holder" not in caplog.text
