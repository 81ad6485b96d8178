"""Unit tests for the host-wide LML budget shared by every process."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.sharedctypes
import os
import subprocess
import sys
import time
import types

import pytest

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.errors import LimiterShedError

SPAWN = multiprocessing.get_context("spawn")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AdvancingSleep:
    """A sleep that moves the fake clock by the requested time and yields once to the loop."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


class ManualSleep:
    """A sleep that finishes only when the test fires it."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    async def __call__(self, seconds: float) -> None:
        event = asyncio.Event()
        self._events.append(event)
        await event.wait()

    def fire_all(self) -> None:
        for event in self._events:
            event.set()


async def settle(steps: int = 50) -> None:
    """Let every ready task run a few steps (no wall-clock waiting)."""
    for _ in range(steps):
        await asyncio.sleep(0)


def make_budget(
    shared: HostBudgetShared,
    clock: FakeClock | None = None,
    *,
    sleep: ManualSleep | AdvancingSleep | None = None,
    pid: int | None = None,
    stale_lock_s: float = 2.0,
) -> tuple[HostBudget, FakeClock]:
    """A budget on a fake clock whose sleeps advance that clock (unless another sleep is given)."""
    clock = clock or FakeClock()
    budget = HostBudget(shared, clock=clock, sleep=sleep or AdvancingSleep(clock), pid=pid, stale_lock_s=stale_lock_s)
    return budget, clock


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class TestSharedState:
    def test_create_starts_free_and_full(self) -> None:
        """A new budget has every permit free and a full bucket."""
        budget, _ = make_budget(HostBudgetShared.create(3, 50))
        assert budget.snapshot() == {"in_use": 0, "max_concurrent": 3, "live_waiting": 0, "tokens": 50}

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
        budget, clock = make_budget(HostBudgetShared.create(2, 50))
        first = await budget.acquire("live", None)
        second = await budget.acquire("live", None)
        assert {first, second} == {0, 1}
        with pytest.raises(LimiterShedError) as info:
            await budget.acquire("live", clock() + 1.0)
        assert info.value.reason == "shed_limiter_saturated"
        assert budget.snapshot()["in_use"] == 2
        budget.release(first)
        assert budget.snapshot()["in_use"] == 1
        assert await budget.acquire("live", clock()) == first

    async def test_free_permit_is_tried_once_even_past_the_deadline(self) -> None:
        """A deadline already in the past still gets a free permit."""
        budget, clock = make_budget(HostBudgetShared.create(1, 50))
        assert await budget.acquire("live", clock() - 1.0) == 0

    async def test_permit_of_a_dead_process_is_reclaimed_only_when_none_is_free(self) -> None:
        """A permit held by a pid that no longer exists is taken over once every permit is in use."""
        shared = HostBudgetShared.create(2, 50)
        ghost, _ = make_budget(shared, pid=dead_pid())
        assert await ghost.acquire("live", None) == 0
        budget, clock = make_budget(shared)
        assert await budget.acquire("live", clock()) == 1  # a free one first
        assert await budget.acquire("live", clock()) == 0  # then the dead pid's
        assert list(shared.permits) == [os.getpid(), os.getpid()]

    async def test_release_of_a_permit_owned_by_someone_else_is_ignored(self) -> None:
        """Releasing an index this pid does not own leaves the permit with its owner."""
        shared = HostBudgetShared.create(1, 50)
        budget, _ = make_budget(shared)
        other, _ = make_budget(shared, pid=os.getppid())
        index = await budget.acquire("live", None)
        other.release(index)
        assert budget.snapshot()["in_use"] == 1

    async def test_unknown_priority_is_rejected(self) -> None:
        """Only "live" and "warm" are priorities."""
        budget, _ = make_budget(HostBudgetShared.create(1, 50))
        with pytest.raises(ValueError, match="priority"):
            await budget.acquire("urgent", None)


class TestPriority:
    async def test_warm_waits_while_a_live_caller_is_registered(self) -> None:
        """A warm caller leaves a free permit alone while a live caller waits, and gets it after."""
        shared = HostBudgetShared.create(1, 50)
        holder, clock = make_budget(shared)
        live_sleep = ManualSleep()
        live_budget, _ = make_budget(shared, clock, sleep=live_sleep)
        warm_budget, _ = make_budget(shared, clock)
        held = await holder.acquire("live", None)
        live = asyncio.ensure_future(live_budget.acquire("live", None))
        await settle()
        assert holder.snapshot()["live_waiting"] == 1
        holder.release(held)
        warm = asyncio.ensure_future(warm_budget.acquire("warm", None))
        await settle()
        assert not warm.done()
        assert holder.snapshot()["in_use"] == 0  # free, yet the warm caller did not take it
        live_sleep.fire_all()
        live_index = await live
        assert holder.snapshot()["live_waiting"] == 0
        await settle()
        assert not warm.done()  # the live caller holds the only permit now
        live_budget.release(live_index)
        assert await warm == live_index

    async def test_warm_ignores_live_registrations_of_dead_processes(self) -> None:
        """Live-waiter registrations left by a dead process do not starve warm callers."""
        shared = HostBudgetShared.create(1, 50)
        shared.waiters[0], shared.waiters[1] = dead_pid(), 3
        budget, clock = make_budget(shared)
        assert budget.snapshot()["live_waiting"] == 3
        assert await budget.acquire("warm", clock()) == 0
        assert budget.snapshot()["live_waiting"] == 0


class TestWaitingEnds:
    async def test_deadline_sheds_and_unregisters(self) -> None:
        """Past its deadline a live caller is shed and no longer counted as waiting."""
        budget, clock = make_budget(HostBudgetShared.create(1, 50))
        await budget.acquire("live", None)
        with pytest.raises(LimiterShedError):
            await budget.acquire("live", clock() + 0.5)
        assert budget.snapshot()["live_waiting"] == 0
        assert budget.snapshot()["in_use"] == 1

    @pytest.mark.parametrize("priority", ["live", "warm"])
    async def test_cancellation_leaves_counts_consistent(self, priority: str) -> None:
        """A caller cancelled while waiting leaves no registration and no permit behind."""
        budget, _ = make_budget(HostBudgetShared.create(1, 50))
        held = await budget.acquire("live", None)
        waiter = asyncio.ensure_future(budget.acquire(priority, None))
        await settle()
        assert budget.snapshot()["live_waiting"] == (1 if priority == "live" else 0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert budget.snapshot()["live_waiting"] == 0
        assert budget.snapshot()["in_use"] == 1
        budget.release(held)
        assert budget.snapshot()["in_use"] == 0


class TestTokenBucket:
    async def test_starts_full_and_takes_without_sleeping(self) -> None:
        """The bucket starts with rate_per_min tokens and a non-empty bucket never sleeps."""
        clock = FakeClock()
        sleep = AdvancingSleep(clock)
        budget = HostBudget(HostBudgetShared.create(1, 3), clock=clock, sleep=sleep)
        for _ in range(3):
            await budget.take_token()
        assert sleep.requested == []
        assert budget.snapshot()["tokens"] == 0

    async def test_refills_continuously_up_to_capacity(self) -> None:
        """Tokens come back at rate_per_min per minute, pro rata, and never exceed the capacity."""
        budget, clock = make_budget(HostBudgetShared.create(1, 60))
        for _ in range(60):
            await budget.take_token()
        clock.advance(0.5)
        assert budget.snapshot()["tokens"] == 0.5
        clock.advance(10.0)
        assert budget.snapshot()["tokens"] == 10.5
        clock.advance(3600.0)
        assert budget.snapshot()["tokens"] == 60

    async def test_waits_in_short_rechecks_until_a_token_is_there(self) -> None:
        """An empty bucket sleeps (in capped steps) for the time to the next token, then takes it."""
        clock = FakeClock()
        sleep = AdvancingSleep(clock)
        budget = HostBudget(HostBudgetShared.create(1, 60), clock=clock, sleep=sleep)  # one token a second
        for _ in range(60):
            await budget.take_token()
        start = clock()
        await budget.take_token()
        assert len(sleep.requested) > 1
        assert all(0 < s <= 0.05 for s in sleep.requested)
        assert clock() - start == pytest.approx(1.0)
        assert budget.snapshot()["tokens"] < 0.01


class TestStaleLock:
    async def test_lock_held_by_a_dead_holder_is_recovered(self, caplog: pytest.LogCaptureFixture) -> None:
        """A lock nobody can take for stale_lock_s is force-released with a warning."""
        shared = HostBudgetShared.create(1, 50)
        assert shared.lock.acquire(block=False)  # the "SIGKILLed" holder never releases it
        budget, clock = make_budget(shared, stale_lock_s=0.05)
        start = clock()
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            assert await budget.acquire("live", None) == 0
        assert clock() - start >= 0.05
        assert "assuming a dead holder" in caplog.text
        assert shared.lock.acquire(block=False)  # released again after the critical section
        shared.lock.release()


def _child_cycles(
    shared: HostBudgetShared,
    counters: multiprocessing.sharedctypes.Synchronized[int],
    peak: multiprocessing.sharedctypes.Synchronized[int],
    done: multiprocessing.sharedctypes.Synchronized[int],
) -> None:
    """Spawned child: two tasks doing 10 acquire/hold/release cycles each against the shared budget."""

    async def cycles() -> None:
        budget = HostBudget(shared)
        for _ in range(10):
            index = await budget.acquire("live", None)
            await budget.take_token()
            with counters.get_lock():
                counters.value += 1
                with peak.get_lock():
                    peak.value = max(peak.value, counters.value)
            await asyncio.sleep(0.005)
            with counters.get_lock():
                counters.value -= 1
            budget.release(index)
            with done.get_lock():
                done.value += 1

    async def main() -> None:
        await asyncio.gather(cycles(), cycles())

    asyncio.run(main())


class TestCrossProcess:
    def test_spawned_processes_share_the_budget(self) -> None:
        """Three spawned processes never hold more than max_concurrent permits at once, and share the bucket."""
        shared = HostBudgetShared.create(2, 600, SPAWN)
        in_flight, peak, done = SPAWN.Value("i", 0), SPAWN.Value("i", 0), SPAWN.Value("i", 0)
        started = time.monotonic()
        procs = [SPAWN.Process(target=_child_cycles, args=(shared, in_flight, peak, done)) for _ in range(3)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
        assert [proc.exitcode for proc in procs] == [0, 0, 0]
        assert done.value == 60
        assert 1 <= peak.value <= 2
        snap = HostBudget(shared).snapshot()
        assert snap["in_use"] == 0
        assert snap["live_waiting"] == 0
        tokens = snap["tokens"]
        assert isinstance(tokens, float)
        assert tokens <= 600 - 60 + (time.monotonic() - started) * 10 + 0.01
