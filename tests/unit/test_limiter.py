"""Unit tests for the LML circuit breaker, token bucket and prioritised limiter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.clients.limiter import CircuitBreaker, LmlLimiter, TokenBucket
from backend.errors import LimiterShedError, LmlTimeoutError, LmlUnavailableError


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManualSleep:
    """A sleep that finishes only when the test fires it; records every requested duration."""

    def __init__(self) -> None:
        self.requested: list[float] = []
        self._events: list[asyncio.Event] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        event = asyncio.Event()
        self._events.append(event)
        await event.wait()

    def fire_all(self) -> None:
        for event in self._events:
            event.set()


async def settle() -> None:
    """Let every ready task run a few steps (no wall-clock waiting)."""
    for _ in range(10):
        await asyncio.sleep(0)


def make_limiter(
    *,
    max_concurrent: int = 1,
    rate_per_min: int = 600,
    threshold: int = 5,
    sleep: ManualSleep | None = None,
    clock: FakeClock | None = None,
) -> LmlLimiter:
    clock = clock or FakeClock()
    return LmlLimiter(
        max_concurrent=max_concurrent,
        rate_per_min=rate_per_min,
        queue_wait_s=5.0,
        breaker=CircuitBreaker(threshold, 30.0, clock),
        clock=clock,
        sleep=sleep or ManualSleep(),
    )


@contextlib.asynccontextmanager
async def holding(limiter: LmlLimiter, priority: str = "live") -> AsyncIterator[None]:
    async with limiter.slot(priority):
        yield


async def enter(limiter: LmlLimiter, priority: str = "live") -> contextlib.AbstractAsyncContextManager[None]:
    """Acquire a slot and return its context manager so the test decides when to release it."""
    cm = limiter.slot(priority)
    await cm.__aenter__()
    return cm


async def leave(cm: contextlib.AbstractAsyncContextManager[None]) -> None:
    await cm.__aexit__(None, None, None)


class TestCircuitBreaker:
    def test_starts_closed_and_admits(self) -> None:
        """A new breaker is closed and admits every call."""
        breaker = CircuitBreaker(3, 30.0, FakeClock())
        assert breaker.state == "closed"
        assert all(breaker.allow() for _ in range(10))

    def test_opens_after_threshold_consecutive_failures(self) -> None:
        """The threshold-th consecutive failure opens the breaker, which then refuses calls."""
        breaker = CircuitBreaker(3, 30.0, FakeClock())
        breaker.record_failure()
        breaker.record_failure()
        assert breaker.state == "closed"
        breaker.record_failure()
        assert breaker.state == "open"
        assert not breaker.allow()

    def test_success_resets_the_failure_count(self) -> None:
        """Failures must be consecutive: a success in between starts the count again."""
        breaker = CircuitBreaker(2, 30.0, FakeClock())
        breaker.record_failure()
        breaker.record_success()
        breaker.record_failure()
        assert breaker.state == "closed"

    def test_stays_open_until_open_duration_elapses(self) -> None:
        """The breaker refuses calls until open_s has passed, then turns half-open."""
        clock = FakeClock()
        breaker = CircuitBreaker(1, 30.0, clock)
        breaker.record_failure()
        clock.advance(29.9)
        assert breaker.state == "open"
        assert not breaker.allow()
        clock.advance(0.1)
        assert breaker.state == "half_open"

    def test_half_open_admits_exactly_one_probe(self) -> None:
        """In half-open the first caller is admitted as the probe and the rest are refused."""
        clock = FakeClock()
        breaker = CircuitBreaker(1, 30.0, clock)
        breaker.record_failure()
        clock.advance(30.0)
        assert breaker.allow()
        assert not breaker.allow()
        assert not breaker.allow()

    def test_probe_success_closes(self) -> None:
        """A successful probe closes the breaker."""
        clock = FakeClock()
        breaker = CircuitBreaker(1, 30.0, clock)
        breaker.record_failure()
        clock.advance(30.0)
        assert breaker.allow()
        breaker.record_success()
        assert breaker.state == "closed"
        assert breaker.allow()
        assert breaker.allow()

    def test_probe_failure_reopens_for_another_period(self) -> None:
        """A failed probe re-opens the breaker for a full open_s, even below the threshold."""
        clock = FakeClock()
        breaker = CircuitBreaker(3, 30.0, clock)
        for _ in range(3):
            breaker.record_failure()
        clock.advance(30.0)
        assert breaker.allow()
        breaker.record_failure()
        assert breaker.state == "open"
        clock.advance(29.0)
        assert not breaker.allow()
        clock.advance(1.0)
        assert breaker.allow()

    def test_released_probe_lets_the_next_caller_probe(self) -> None:
        """A probe that ends without a verdict frees the probe slot."""
        clock = FakeClock()
        breaker = CircuitBreaker(1, 30.0, clock)
        breaker.record_failure()
        clock.advance(30.0)
        assert breaker.allow()
        breaker.release_probe()
        assert breaker.state == "half_open"
        assert breaker.allow()


class TestTokenBucket:
    def test_starts_full(self) -> None:
        """The bucket starts with rate_per_min tokens."""
        assert TokenBucket(50, FakeClock()).tokens == 50

    async def test_take_does_not_sleep_while_tokens_remain(self) -> None:
        """Taking a token from a non-empty bucket never sleeps."""
        sleep = ManualSleep()
        bucket = TokenBucket(3, FakeClock())
        for _ in range(3):
            await bucket.take(sleep)
        assert sleep.requested == []
        assert bucket.tokens == 0

    def test_refills_continuously_up_to_capacity(self) -> None:
        """Tokens come back at rate_per_min per minute, pro rata, and never exceed the capacity."""
        clock = FakeClock()
        bucket = TokenBucket(60, clock)
        for _ in range(60):
            assert bucket.try_take()
        assert not bucket.try_take()
        clock.advance(0.5)
        assert bucket.tokens == pytest.approx(0.5)
        clock.advance(10.0)
        assert bucket.tokens == pytest.approx(10.5)
        clock.advance(3600.0)
        assert bucket.tokens == 60

    async def test_take_waits_and_rechecks_after_each_sleep(self) -> None:
        """An empty bucket sleeps for the missing fraction and re-checks until a token is there."""
        clock = FakeClock()
        bucket = TokenBucket(60, clock)  # one token per second
        while bucket.try_take():
            pass
        slept: list[float] = []

        async def short_sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds / 2)  # wakes early: the bucket must check again

        await bucket.take(short_sleep)
        assert slept[0] == pytest.approx(1.0)
        assert len(slept) > 1
        assert bucket.tokens < 1


class TestLmlLimiter:
    async def test_grants_up_to_max_concurrent_without_waiting(self) -> None:
        """Callers below max_concurrent get a permit at once."""
        limiter = make_limiter(max_concurrent=2)
        first, second = await enter(limiter), await enter(limiter)
        assert limiter.snapshot()["in_use"] == 2
        await leave(first)
        await leave(second)
        assert limiter.snapshot()["in_use"] == 0

    async def test_each_call_takes_a_token(self) -> None:
        """A call spends one rate-limit token inside its permit."""
        limiter = make_limiter(rate_per_min=10)
        async with limiter.slot():
            pass
        assert limiter.snapshot()["tokens"] == 9

    async def test_permits_are_granted_fifo(self) -> None:
        """Waiting live callers get permits in arrival order."""
        limiter = make_limiter()
        order: list[int] = []

        async def call(n: int) -> None:
            async with limiter.slot():
                order.append(n)

        holder = await enter(limiter)
        tasks = []
        for n in range(4):
            tasks.append(asyncio.ensure_future(call(n)))
            await settle()
        assert limiter.snapshot()["waiting_live"] == 4
        await leave(holder)
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3]
        assert limiter.snapshot()["in_use"] == 0

    async def test_live_caller_is_shed_after_queue_wait(self) -> None:
        """A live caller still queued when queue_wait_s elapses is shed and counted as a breaker failure."""
        sleep = ManualSleep()
        limiter = make_limiter(sleep=sleep)
        holder = await enter(limiter)
        waiter = asyncio.ensure_future(holding(limiter).__aenter__())
        await settle()
        assert sleep.requested == [5.0]
        sleep.fire_all()
        with pytest.raises(LimiterShedError) as info:
            await waiter
        assert info.value.reason == "shed_limiter_saturated"
        assert limiter.breaker.consecutive_failures == 1
        assert limiter.snapshot()["waiting_live"] == 0
        await leave(holder)
        assert limiter.snapshot()["in_use"] == 0

    async def test_breaker_open_sheds_without_queueing(self) -> None:
        """An open breaker sheds at once, without taking a permit or a token."""
        limiter = make_limiter(threshold=1, rate_per_min=10)
        limiter.breaker.record_failure()
        with pytest.raises(LimiterShedError) as info:
            async with limiter.slot():
                pytest.fail("body must not run")
        assert info.value.reason == "shed_breaker_open"
        assert limiter.snapshot()["in_use"] == 0
        assert limiter.snapshot()["tokens"] == 10

    @pytest.mark.parametrize(
        ("raised", "failures"),
        [
            pytest.param(None, 0, id="normal-exit-is-success"),
            pytest.param(LmlTimeoutError(), 3, id="timeout-is-failure"),
            pytest.param(LmlUnavailableError("LML responded with 500: x"), 0, id="other-error-is-success"),
        ],
    )
    async def test_outcome_inside_slot_feeds_the_breaker(self, raised: Exception | None, failures: int) -> None:
        """Only an LmlTimeoutError escaping the block counts against the breaker."""
        limiter = make_limiter()
        limiter.breaker.record_failure()
        limiter.breaker.record_failure()
        with contextlib.suppress(Exception):
            async with limiter.slot():
                if raised is not None:
                    raise raised
        assert limiter.breaker.consecutive_failures == failures
        assert limiter.snapshot()["in_use"] == 0

    async def test_warm_callers_yield_to_live_callers(self) -> None:
        """A freed permit goes to a waiting live caller before an earlier warm one."""
        limiter = make_limiter()
        order: list[str] = []

        async def call(name: str, priority: str) -> None:
            async with limiter.slot(priority):
                order.append(name)

        holder = await enter(limiter)
        warm = asyncio.ensure_future(call("warm", "warm"))
        await settle()
        live = asyncio.ensure_future(call("live", "live"))
        await settle()
        assert limiter.snapshot()["waiting_warm"] == 1
        assert limiter.snapshot()["waiting_live"] == 1
        await leave(holder)
        await asyncio.gather(warm, live)
        assert order == ["live", "warm"]

    async def test_warm_caller_does_not_take_a_free_permit_ahead_of_waiting_live(self) -> None:
        """A warm caller queues behind waiting live callers instead of grabbing a permit."""
        limiter = make_limiter(max_concurrent=1)
        holder = await enter(limiter)
        live = asyncio.ensure_future(holding(limiter).__aenter__())
        await settle()
        warm = asyncio.ensure_future(holding(limiter, "warm").__aenter__())
        await settle()
        assert limiter.snapshot()["waiting_warm"] == 1
        live.cancel()
        warm.cancel()
        await asyncio.gather(live, warm, return_exceptions=True)
        await leave(holder)
        assert limiter.snapshot()["in_use"] == 0

    async def test_warm_callers_are_not_shed_by_queue_wait(self) -> None:
        """A warm caller waits for a permit without a deadline."""
        sleep = ManualSleep()
        limiter = make_limiter(sleep=sleep)
        holder = await enter(limiter)
        entered = asyncio.Event()

        async def warm_call() -> None:
            async with limiter.slot("warm"):
                entered.set()

        task = asyncio.ensure_future(warm_call())
        await settle()
        assert sleep.requested == []
        await leave(holder)
        await task
        assert entered.is_set()

    @pytest.mark.parametrize("priority", [pytest.param("live", id="live"), pytest.param("warm", id="warm")])
    async def test_cancelled_waiter_does_not_leak_a_permit(self, priority: str) -> None:
        """A caller cancelled while queued leaves the queue and the permit count intact."""
        limiter = make_limiter()
        holder = await enter(limiter)
        waiter = asyncio.ensure_future(holding(limiter, priority).__aenter__())
        await settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        snap = limiter.snapshot()
        assert (snap["waiting_live"], snap["waiting_warm"], snap["in_use"]) == (0, 0, 1)
        await leave(holder)
        assert limiter.snapshot()["in_use"] == 0
        async with limiter.slot():
            assert limiter.snapshot()["in_use"] == 1

    @pytest.mark.parametrize("priority", [pytest.param("live", id="live"), pytest.param("warm", id="warm")])
    async def test_cancelled_after_grant_passes_the_permit_on(self, priority: str) -> None:
        """A caller cancelled after a permit was handed to it (but before it ran) gives the permit back."""
        limiter = make_limiter()
        holder = await enter(limiter)
        waiter = asyncio.ensure_future(holding(limiter, priority).__aenter__())
        await settle()
        await leave(holder)  # hands the permit to the waiter, which has not resumed yet
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limiter.snapshot()["in_use"] == 0

    async def test_cancelled_body_releases_the_permit(self) -> None:
        """Cancelling a call inside its slot releases the permit and gives the breaker no verdict."""
        limiter = make_limiter()
        limiter.breaker.record_failure()
        started = asyncio.Event()

        async def call() -> None:
            async with limiter.slot():
                started.set()
                await asyncio.Event().wait()

        task = asyncio.ensure_future(call())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert limiter.snapshot()["in_use"] == 0
        assert limiter.breaker.consecutive_failures == 1

    async def test_cancelled_probe_frees_the_half_open_slot(self) -> None:
        """A half-open probe cancelled before it got an answer lets the next caller probe."""
        clock = FakeClock()
        limiter = make_limiter(threshold=1, clock=clock)
        holder = await enter(limiter)
        limiter.breaker.record_failure()
        clock.advance(30.0)
        probe = asyncio.ensure_future(holding(limiter).__aenter__())
        await settle()
        with pytest.raises(LimiterShedError):
            async with limiter.slot():
                pass
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert limiter.breaker.state == "half_open"
        next_probe = asyncio.ensure_future(holding(limiter).__aenter__())
        await settle()
        assert limiter.snapshot()["waiting_live"] == 1  # admitted by the breaker, queued for a permit
        next_probe.cancel()
        await asyncio.gather(next_probe, return_exceptions=True)
        await leave(holder)

    async def test_rejects_unknown_priority(self) -> None:
        """Only "live" and "warm" are priorities."""
        limiter = make_limiter()
        with pytest.raises(ValueError, match="priority"):
            async with limiter.slot("urgent"):
                pass

    async def test_snapshot_reports_state(self) -> None:
        """snapshot() reports permits, queues, tokens and the breaker state."""
        limiter = make_limiter(max_concurrent=3, rate_per_min=20)
        assert limiter.snapshot() == {
            "in_use": 0,
            "max_concurrent": 3,
            "waiting_live": 0,
            "waiting_warm": 0,
            "tokens": 20,
            "breaker": "closed",
        }


class YieldSleep:
    """A sleep that only yields to the loop: with a frozen fake clock, a poller never reaches a deadline."""

    async def __call__(self, seconds: float) -> None:
        await asyncio.sleep(0)


class AdvancingSleep:
    """A sleep that moves a fake clock by the requested time and yields once."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await asyncio.sleep(0)


def make_host_limiter(
    shared: HostBudgetShared,
    *,
    host_sleep: YieldSleep | AdvancingSleep | None = None,
    host_clock: FakeClock | None = None,
    max_concurrent: int = 2,
    rate_per_min: int = 600,
) -> LmlLimiter:
    """A limiter (as in make_limiter) that also draws on the given host budget."""
    clock = FakeClock()
    host_clock = host_clock or FakeClock()
    host = HostBudget(shared, clock=host_clock, sleep=host_sleep or YieldSleep())
    return LmlLimiter(
        max_concurrent=max_concurrent,
        rate_per_min=rate_per_min,
        queue_wait_s=5.0,
        breaker=CircuitBreaker(5, 30.0, clock),
        clock=clock,
        sleep=ManualSleep(),
        host=host,
    )


class TestLmlLimiterWithHostBudget:
    async def test_second_limiter_waits_for_the_host_permit(self) -> None:
        """Two limiters sharing a one-permit host budget: the second caller enters only after the first leaves."""
        shared = HostBudgetShared.create(1, 600)
        first_limiter, second_limiter = make_host_limiter(shared), make_host_limiter(shared)
        first = await enter(first_limiter)
        second = asyncio.ensure_future(enter(second_limiter))
        await settle()
        assert not second.done()
        host = second_limiter.snapshot()["host"]
        assert isinstance(host, dict)
        assert (host["in_use"], host["live_waiting"]) == (1, 1)
        assert second_limiter.snapshot()["in_use"] == 1  # holds its local permit while waiting
        await leave(first)
        second_cm = await second
        host = first_limiter.snapshot()["host"]
        assert isinstance(host, dict)
        assert (host["in_use"], host["live_waiting"]) == (1, 0)
        await leave(second_cm)
        assert second_limiter.snapshot()["in_use"] == 0
        host = second_limiter.snapshot()["host"]
        assert isinstance(host, dict)
        assert host["in_use"] == 0

    async def test_live_caller_is_shed_when_the_host_permit_is_held_elsewhere(self) -> None:
        """A live caller that cannot get a host permit within queue_wait_s is shed: a breaker failure."""
        shared = HostBudgetShared.create(1, 600)
        host_clock = FakeClock()
        holder = await enter(make_host_limiter(shared))
        limiter = make_host_limiter(shared, host_clock=host_clock, host_sleep=AdvancingSleep(host_clock))
        start = host_clock()
        with pytest.raises(LimiterShedError) as info:
            async with limiter.slot():
                pytest.fail("body must not run")
        assert info.value.reason == "shed_limiter_saturated"
        assert host_clock() - start == pytest.approx(5.0, abs=0.02)
        assert limiter.breaker.consecutive_failures == 1
        snap = limiter.snapshot()
        assert snap["in_use"] == 0
        host = snap["host"]
        assert isinstance(host, dict)
        assert (host["in_use"], host["live_waiting"]) == (1, 0)
        await leave(holder)

    async def test_warm_caller_waits_for_the_host_permit_without_deadline(self) -> None:
        """A warm caller is not shed however long it waits for a host permit."""
        shared = HostBudgetShared.create(1, 600)
        host_clock = FakeClock()
        holder_limiter = make_host_limiter(shared)
        holder = await enter(holder_limiter)
        limiter = make_host_limiter(shared, host_clock=host_clock, host_sleep=AdvancingSleep(host_clock))
        warm = asyncio.ensure_future(enter(limiter, "warm"))
        await settle()
        while host_clock.now < 1100.0:
            await asyncio.sleep(0)
        assert not warm.done()
        await leave(holder)
        await leave(await warm)
        assert limiter.breaker.consecutive_failures == 0

    async def test_tokens_come_from_the_host_bucket(self) -> None:
        """With a host budget the rate token is taken from the shared bucket, not the local one."""
        shared = HostBudgetShared.create(2, 10)
        limiter = make_host_limiter(shared, rate_per_min=50)
        async with limiter.slot():
            pass
        snap = limiter.snapshot()
        assert snap["tokens"] == 50
        assert snap["host"] == {"in_use": 0, "max_concurrent": 2, "live_waiting": 0, "tokens": 9}
