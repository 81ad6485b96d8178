"""Unit tests for the LML circuit breaker, token bucket, token sources and prioritised limiter."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeVar

import pytest

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.clients.limiter import CircuitBreaker, HostTokens, LmlLimiter, LocalTokens, TokenBucket, TokenSource
from backend.errors import (
    LimiterShedError,
    LmlBadResponseError,
    LmlNotFoundError,
    LmlStatusError,
    LmlTimeoutError,
    LmlUnavailableError,
)
from tests.unit.fakes import FakeClock, VirtualTime, finished, settle

QUEUE_WAIT_S = 5.0

T = TypeVar("T")


def make_local_tokens(vt: VirtualTime, rate_per_min: int = 600, *, reserve: int = 0) -> LocalTokens:
    return LocalTokens(rate_per_min, reserve=reserve, clock=vt.clock, sleep=vt.sleep)


def make_limiter(
    vt: VirtualTime | None = None,
    *,
    max_concurrent: int = 1,
    threshold: int = 5,
    tokens: TokenSource | None = None,
    host: HostBudget | None = None,
) -> LmlLimiter:
    vt = vt or VirtualTime()
    return LmlLimiter(
        max_concurrent,
        QUEUE_WAIT_S,
        CircuitBreaker(threshold, 30.0, vt.clock),
        tokens or make_local_tokens(vt),
        clock=vt.clock,
        sleep=vt.sleep,
        host=host,
    )


def drain(tokens: LocalTokens) -> None:
    """Empty a local bucket without waiting."""
    while tokens.bucket.try_take() == 0:
        pass


async def enter(limiter: LmlLimiter, priority: str = "live") -> contextlib.AbstractAsyncContextManager[None]:
    """Acquire a slot and return its context manager, so the test decides when to release it."""
    cm = limiter.slot(priority)
    await cm.__aenter__()
    return cm


async def leave(cm: contextlib.AbstractAsyncContextManager[None]) -> None:
    await cm.__aexit__(None, None, None)


def waiting(limiter: LmlLimiter) -> tuple[object, object, object]:
    snap = limiter.snapshot()
    return snap["waiting_live"], snap["waiting_warm"], snap["in_use"]


class TestCircuitBreaker:
    def test_starts_closed_and_admits(self) -> None:
        """A new breaker is closed and admits every call."""
        breaker = CircuitBreaker(3, 30.0, FakeClock())
        assert breaker.state == "closed"
        assert all(breaker.allow() for _ in range(10))

    def test_rejects_a_threshold_below_one(self) -> None:
        """A breaker needs at least one failure to open."""
        with pytest.raises(ValueError, match="threshold"):
            CircuitBreaker(0, 30.0)

    def test_opens_after_threshold_consecutive_failures(self) -> None:
        """The threshold-th consecutive failure opens the breaker, which then refuses calls."""
        breaker = CircuitBreaker(3, 30.0, FakeClock())
        breaker.record_failure()
        breaker.record_failure()
        assert (breaker.state, breaker.consecutive_failures) == ("closed", 2)
        breaker.record_failure()
        assert breaker.state == "open"
        assert not breaker.allow()

    def test_success_resets_the_failure_count(self) -> None:
        """Failures must be consecutive: a success in between starts the count again."""
        breaker = CircuitBreaker(2, 30.0, FakeClock())
        breaker.record_failure()
        breaker.record_success()
        breaker.record_failure()
        assert (breaker.state, breaker.consecutive_failures) == ("closed", 1)

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

    def test_opened_counts_each_opening_once(self) -> None:
        """The ``opened`` metric counts openings, not failures recorded while already open."""
        clock = FakeClock()
        breaker = CircuitBreaker(2, 30.0, clock)
        breaker.record_failure()
        assert breaker.opened == 0
        breaker.record_failure()
        breaker.record_failure()  # a straggler failing while open
        assert breaker.opened == 1
        clock.advance(30.0)
        assert breaker.allow()
        breaker.record_failure()  # the probe fails: opened again
        assert breaker.opened == 2


class TestTokenBucket:
    def test_starts_full(self) -> None:
        """The bucket starts with rate_per_min tokens."""
        assert TokenBucket(50, FakeClock()).tokens == 50

    def test_rejects_a_rate_below_one(self) -> None:
        """A bucket needs a rate of at least one token a minute."""
        with pytest.raises(ValueError, match="rate_per_min"):
            TokenBucket(0)

    def test_try_take_returns_zero_until_empty_then_the_wait(self) -> None:
        """try_take takes a token (returning 0) while one is there, then returns the seconds to the next."""
        bucket = TokenBucket(60, FakeClock())  # one token a second
        assert [bucket.try_take() for _ in range(60)] == [0.0] * 60
        assert bucket.tokens == 0
        assert bucket.try_take() == pytest.approx(1.0)
        assert bucket.tokens == 0  # a refused take takes nothing

    def test_keep_leaves_tokens_in_the_bucket(self) -> None:
        """With ``keep`` a take only succeeds if more than ``keep`` tokens remain after it."""
        clock = FakeClock()
        bucket = TokenBucket(6, clock)  # one token every 10 s
        assert [bucket.try_take(keep=3) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert bucket.try_take(keep=3) == pytest.approx(10.0)  # 3 left: needs a 4th
        assert bucket.try_take() == 0.0  # no keep: still served
        assert bucket.try_take(keep=3) == pytest.approx(20.0)

    def test_refills_continuously_up_to_capacity(self) -> None:
        """Tokens come back at rate_per_min per minute, pro rata, and never exceed the capacity."""
        clock = FakeClock()
        bucket = TokenBucket(60, clock)
        for _ in range(60):
            bucket.try_take()
        clock.advance(0.5)
        assert bucket.tokens == pytest.approx(0.5)
        assert bucket.try_take() == pytest.approx(0.5)
        clock.advance(10.0)
        assert bucket.tokens == pytest.approx(10.5)
        clock.advance(3600.0)
        assert bucket.tokens == 60


class TestLocalTokens:
    async def test_takes_without_sleeping_while_tokens_remain(self) -> None:
        """Taking from a non-empty bucket never sleeps."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 3)
        for _ in range(3):
            await tokens.take("live", None)
        assert vt.requested == []
        assert tokens.snapshot() == {"scope": "process", "tokens": 0}

    async def test_waits_for_the_next_token(self) -> None:
        """An empty bucket makes the caller wait until the next token has refilled, then take it."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 60)  # one token a second
        drain(tokens)
        start = vt.now
        task = asyncio.ensure_future(tokens.take("live", start + QUEUE_WAIT_S))
        await vt.advance(0.9)
        assert not task.done()
        await vt.advance(0.1)
        assert task.done()
        await finished(task)
        assert vt.now - start == pytest.approx(1.0)
        assert tokens.bucket.tokens == pytest.approx(0.0)

    async def test_live_caller_is_shed_when_the_token_comes_after_its_deadline(self) -> None:
        """A live caller whose next token is due after its deadline is shed at once, without sleeping."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 6)  # one token every 10 s
        drain(tokens)
        live = asyncio.ensure_future(tokens.take("live", vt.now + QUEUE_WAIT_S))
        with pytest.raises(LimiterShedError) as info:
            await finished(live)
        assert info.value.reason == "shed_rate_limited"
        assert vt.requested == []

    async def test_warm_callers_leave_the_reserve_to_live_ones(self) -> None:
        """A warm caller stops ``reserve`` tokens short of empty; a live caller takes those too."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 10, reserve=3)
        for _ in range(7):
            await tokens.take("warm", None)
        warm = asyncio.ensure_future(tokens.take("warm", None))
        await settle()
        assert not warm.done()
        for _ in range(3):
            await tokens.take("live", vt.now)
        assert tokens.bucket.tokens == 0
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)

    async def test_warm_caller_never_gives_up(self) -> None:
        """A warm caller waits as long as it takes (no deadline) and gets its token eventually."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 1)  # one token a minute
        drain(tokens)
        warm = asyncio.ensure_future(tokens.take("warm", None))
        await vt.advance(59.0)
        assert not warm.done()
        await vt.advance(1.0)
        await finished(warm)

    async def test_live_caller_takes_the_next_token_before_an_earlier_warm_one(self) -> None:
        """A warm caller that waited first holds back while a live caller waits: the live one gets the token."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 60)
        drain(tokens)
        warm = asyncio.ensure_future(tokens.take("warm", None))
        await vt.advance(0.5)
        live = asyncio.ensure_future(tokens.take("live", vt.now + QUEUE_WAIT_S))
        await vt.advance(0.5)
        assert live.done() and not warm.done()
        await finished(live)
        await vt.advance(1.0)
        assert warm.done()
        await finished(warm)

    async def test_cancelled_live_caller_stops_holding_warm_callers_back(self) -> None:
        """Once a waiting live caller is cancelled, warm callers take tokens again."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 60)
        drain(tokens)
        live = asyncio.ensure_future(tokens.take("live", vt.now + QUEUE_WAIT_S))
        warm = asyncio.ensure_future(tokens.take("warm", None))
        await vt.advance(0.5)
        live.cancel()
        await asyncio.gather(live, return_exceptions=True)
        await vt.advance(0.6)
        assert warm.done()
        await finished(warm)

    async def test_rejects_unknown_priority(self) -> None:
        """Only "live" and "warm" are priorities."""
        with pytest.raises(ValueError, match="priority"):
            await make_local_tokens(VirtualTime()).take("urgent", None)


def make_host_tokens(vt: VirtualTime, shared: HostBudgetShared, *, reserve: int = 0) -> HostTokens:
    return HostTokens(HostBudget(shared, clock=vt.clock, sleep=vt.sleep), reserve=reserve, sleep=vt.sleep)


class TestHostTokens:
    async def test_processes_share_the_host_bucket(self) -> None:
        """Two token sources on one host budget draw on the same bucket."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 4)
        first, second = make_host_tokens(vt, shared), make_host_tokens(vt, shared)
        for source in (first, second, first, second):
            await source.take("live", vt.now)
        assert vt.requested == []
        live = asyncio.ensure_future(first.take("live", vt.now + QUEUE_WAIT_S))  # next token in 15 s
        with pytest.raises(LimiterShedError, match="shed_rate_limited"):
            await finished(live)
        assert second.snapshot()["scope"] == "host"
        assert second.snapshot()["tokens"] == 0

    async def test_warm_callers_leave_the_reserve_to_live_ones(self) -> None:
        """A warm caller stops ``reserve`` tokens short of empty on the host bucket too."""
        vt = VirtualTime()
        source = make_host_tokens(vt, HostBudgetShared.create(1, 10), reserve=3)
        for _ in range(7):
            await source.take("warm", None)
        warm = asyncio.ensure_future(source.take("warm", None))
        await settle()
        assert not warm.done()
        for _ in range(3):
            await source.take("live", vt.now)
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)
        assert source.snapshot()["tokens"] == 0

    async def test_live_caller_waits_for_the_next_host_token(self) -> None:
        """An empty host bucket makes a live caller wait for the refill within its deadline."""
        vt = VirtualTime()
        source = make_host_tokens(vt, HostBudgetShared.create(1, 60))
        for _ in range(60):
            await source.take("live", None)
        start = vt.now
        live = asyncio.ensure_future(source.take("live", start + QUEUE_WAIT_S))
        await vt.advance(1.0)
        assert live.done()
        await finished(live)
        assert vt.now - start == pytest.approx(1.0)

    async def test_live_caller_takes_the_next_token_before_an_earlier_warm_one(self) -> None:
        """With no reserve, a warm caller that waited first still leaves the next host token to a waiting live one."""
        vt = VirtualTime()
        source = make_host_tokens(vt, HostBudgetShared.create(1, 60), reserve=0)
        for _ in range(60):
            await source.take("live", None)
        warm = asyncio.ensure_future(source.take("warm", None))
        await vt.advance(0.5)
        live = asyncio.ensure_future(source.take("live", vt.now + QUEUE_WAIT_S))
        try:
            await vt.advance(0.5)
            assert live.done() and not warm.done()
        finally:
            for task in (warm, live):
                task.cancel()
            await asyncio.gather(warm, live, return_exceptions=True)


class TestLmlLimiterPermits:
    async def test_rejects_max_concurrent_below_one(self) -> None:
        """A limiter needs at least one permit."""
        vt = VirtualTime()
        with pytest.raises(ValueError, match="max_concurrent"):
            LmlLimiter(0, 1.0, CircuitBreaker(1, 1.0), make_local_tokens(vt))

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
        vt = VirtualTime()
        limiter = make_limiter(vt, tokens=make_local_tokens(vt, 10))
        async with limiter.slot():
            pass
        assert limiter.snapshot()["tokens"] == {"scope": "process", "tokens": 9}

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
        assert limiter.queue_depth == 4
        await leave(holder)
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3]
        assert limiter.snapshot()["in_use"] == 0

    async def test_live_caller_is_shed_after_queue_wait(self) -> None:
        """A live caller still queued when queue_wait_s elapses is shed, counted, and is a breaker failure."""
        vt = VirtualTime()
        limiter = make_limiter(vt)
        holder = await enter(limiter)
        waiter = asyncio.ensure_future(enter(limiter))
        await vt.advance(QUEUE_WAIT_S - 0.1)
        assert not waiter.done()
        await vt.advance(0.1)
        with pytest.raises(LimiterShedError) as info:
            await finished(waiter)
        assert info.value.reason == "shed_limiter_saturated"
        assert limiter.sheds["shed_limiter_saturated"] == 1
        assert limiter.breaker.consecutive_failures == 1
        assert waiting(limiter) == (0, 0, 1)
        await leave(holder)
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
        assert waiting(limiter) == (1, 1, 1)
        await leave(holder)
        await asyncio.gather(warm, live)
        assert order == ["live", "warm"]

    async def test_warm_caller_does_not_take_a_free_permit_ahead_of_waiting_live(self) -> None:
        """A warm caller queues behind waiting live callers instead of grabbing a freed permit."""
        limiter = make_limiter(max_concurrent=2)
        first, second = await enter(limiter), await enter(limiter)
        live = asyncio.ensure_future(enter(limiter))
        await settle()
        warm = asyncio.ensure_future(enter(limiter, "warm"))
        await settle()
        assert waiting(limiter) == (1, 1, 2)
        await leave(first)  # the freed permit goes to the live caller, not the warm one
        live_cm = await finished(live)
        await settle()
        assert not warm.done()
        await leave(second)
        warm_cm = await finished(warm)
        await leave(live_cm)
        await leave(warm_cm)
        assert waiting(limiter) == (0, 0, 0)

    async def test_warm_callers_are_not_shed_by_queue_wait(self) -> None:
        """A warm caller waits for a permit without a deadline."""
        vt = VirtualTime()
        limiter = make_limiter(vt)
        holder = await enter(limiter)
        warm = asyncio.ensure_future(enter(limiter, "warm"))
        await vt.advance(10 * QUEUE_WAIT_S)
        assert not warm.done()
        await leave(holder)
        await leave(await finished(warm))
        assert limiter.sheds == {}
        assert limiter.breaker.consecutive_failures == 0

    @pytest.mark.parametrize("priority", [pytest.param("live", id="live"), pytest.param("warm", id="warm")])
    async def test_cancelled_waiter_does_not_leak_a_permit(self, priority: str) -> None:
        """A caller cancelled while queued leaves the queue and the permit count intact."""
        limiter = make_limiter()
        holder = await enter(limiter)
        waiter = asyncio.ensure_future(enter(limiter, priority))
        await settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finished(waiter)
        assert waiting(limiter) == (0, 0, 1)
        await leave(holder)
        assert limiter.snapshot()["in_use"] == 0
        async with limiter.slot():
            assert limiter.snapshot()["in_use"] == 1

    @pytest.mark.parametrize("priority", [pytest.param("live", id="live"), pytest.param("warm", id="warm")])
    async def test_cancelled_after_grant_passes_the_permit_on(self, priority: str) -> None:
        """A caller cancelled after a permit was handed to it (but before it ran) gives the permit back."""
        limiter = make_limiter()
        holder = await enter(limiter)
        waiter = asyncio.ensure_future(enter(limiter, priority))
        await settle()
        await leave(holder)  # hands the permit to the waiter, which has not resumed yet
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finished(waiter)
        assert limiter.snapshot()["in_use"] == 0

    async def test_rejects_unknown_priority(self) -> None:
        """Only "live" and "warm" are priorities."""
        limiter = make_limiter()
        with pytest.raises(ValueError, match="priority"):
            async with limiter.slot("urgent"):
                pass

    async def test_snapshot_reports_state(self) -> None:
        """snapshot() reports permits, queues, the breaker, the token source and the sheds."""
        vt = VirtualTime()
        limiter = make_limiter(vt, max_concurrent=3, tokens=make_local_tokens(vt, 20))
        assert limiter.snapshot() == {
            "in_use": 0,
            "max_concurrent": 3,
            "waiting_live": 0,
            "waiting_warm": 0,
            "breaker": "closed",
            "tokens": {"scope": "process", "tokens": 20},
            "sheds": {},
        }


class TestLmlLimiterBreaker:
    async def test_breaker_open_sheds_without_queueing(self) -> None:
        """An open breaker sheds at once, without taking a permit or a token, and counts the shed."""
        vt = VirtualTime()
        limiter = make_limiter(vt, threshold=1, tokens=make_local_tokens(vt, 10))
        limiter.breaker.record_failure()
        with pytest.raises(LimiterShedError) as info:
            async with limiter.slot():
                pytest.fail("body must not run")
        assert info.value.reason == "shed_breaker_open"
        assert limiter.sheds["shed_breaker_open"] == 1
        snap = limiter.snapshot()
        assert snap["in_use"] == 0
        assert snap["tokens"] == {"scope": "process", "tokens": 10}

    @pytest.mark.parametrize(
        ("raised", "failures"),
        [
            pytest.param(None, 0, id="normal-exit-is-success"),
            pytest.param(LmlTimeoutError(), 3, id="timeout-is-failure"),
            pytest.param(LmlUnavailableError("LML responded with 500: x"), 3, id="5xx-is-failure"),
            pytest.param(LmlUnavailableError("LML request failed: refused"), 3, id="network-error-is-failure"),
            pytest.param(LmlNotFoundError("LML responded with 404: Not Found"), 0, id="404-is-success"),
            pytest.param(LmlStatusError("LML responded with 422: x", 422), 0, id="4xx-is-success"),
            pytest.param(LmlBadResponseError("malformed"), 0, id="bad-body-is-success"),
            pytest.param(ValueError("our own bug"), 0, id="other-error-is-success"),
        ],
    )
    async def test_outcome_inside_slot_feeds_the_breaker(self, raised: Exception | None, failures: int) -> None:
        """Timeouts, network failures and 5xx escaping the block count against the breaker; LML answering does not."""
        limiter = make_limiter()
        limiter.breaker.record_failure()
        limiter.breaker.record_failure()
        with contextlib.suppress(Exception):
            async with limiter.slot():
                if raised is not None:
                    raise raised
        assert limiter.breaker.consecutive_failures == failures
        assert limiter.snapshot()["in_use"] == 0

    async def test_a_run_of_unavailable_answers_opens_the_breaker(self) -> None:
        """Five consecutive 5xx/connection failures open a threshold-5 breaker and the next call is shed."""
        limiter = make_limiter(threshold=5)
        for _ in range(5):
            with pytest.raises(LmlUnavailableError):
                async with limiter.slot():
                    raise LmlUnavailableError("LML responded with 503: Service Unavailable")
        assert limiter.breaker.state == "open"
        with pytest.raises(LimiterShedError, match="shed_breaker_open"):
            async with limiter.slot():
                pytest.fail("body must not run")

    async def test_half_open_probe_success_closes_the_breaker(self) -> None:
        """After open_s one call goes through as the probe; its success closes the breaker."""
        vt = VirtualTime()
        limiter = make_limiter(vt, threshold=1)
        limiter.breaker.record_failure()
        vt.now += 30.0
        async with limiter.slot():
            with pytest.raises(LimiterShedError, match="shed_breaker_open"):
                async with limiter.slot():
                    pass  # a second caller while the probe is in flight
        assert limiter.breaker.state == "closed"

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
            await finished(task)
        assert limiter.snapshot()["in_use"] == 0
        assert limiter.breaker.consecutive_failures == 1

    async def test_cancelled_probe_frees_the_half_open_slot(self) -> None:
        """A half-open probe cancelled before it got an answer lets the next caller probe."""
        vt = VirtualTime()
        limiter = make_limiter(vt, threshold=1)
        holder = await enter(limiter)
        limiter.breaker.record_failure()
        vt.now += 30.0
        probe = asyncio.ensure_future(enter(limiter))
        await settle()
        with pytest.raises(LimiterShedError):
            async with limiter.slot():
                pass
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finished(probe)
        assert limiter.breaker.state == "half_open"
        next_probe = asyncio.ensure_future(enter(limiter))
        await settle()
        assert limiter.snapshot()["waiting_live"] == 1  # admitted by the breaker, queued for a permit
        next_probe.cancel()
        await asyncio.gather(next_probe, return_exceptions=True)
        await leave(holder)


class TestLmlLimiterTokens:
    async def test_rate_limited_shed_is_counted_but_not_a_breaker_failure(self) -> None:
        """A live caller whose token comes too late is shed as rate-limited; LML's health is not in question."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 6)
        drain(tokens)
        limiter = make_limiter(vt, tokens=tokens)
        waiter = asyncio.ensure_future(enter(limiter))
        with pytest.raises(LimiterShedError) as info:
            await finished(waiter)
        assert info.value.reason == "shed_rate_limited"
        assert dict(limiter.sheds) == {"shed_rate_limited": 1}
        assert limiter.breaker.consecutive_failures == 0
        assert limiter.snapshot()["in_use"] == 0

    async def test_token_wait_counts_against_the_same_deadline_as_the_permit_wait(self) -> None:
        """A live caller that waited 3 s for a permit is shed rather than wait 7 s more for a token."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 6)  # one token every 10 s
        limiter = make_limiter(vt, tokens=tokens)
        holder = await enter(limiter)
        drain(tokens)
        start = vt.now
        waiter = asyncio.ensure_future(enter(limiter))
        await vt.advance(3.0)
        await leave(holder)  # permit at +3 s; 0.3 tokens, the next one 7 s away with 2 s left
        with pytest.raises(LimiterShedError) as info:
            await finished(waiter)
        assert info.value.reason == "shed_rate_limited"
        assert vt.now - start == pytest.approx(3.0)
        assert limiter.snapshot()["in_use"] == 0

    async def test_live_caller_gets_a_token_within_what_is_left_of_its_deadline(self) -> None:
        """After waiting for a permit, a live caller waits for its token only as long as its deadline allows."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 15)  # one token every 4 s
        limiter = make_limiter(vt, tokens=tokens)
        holder = await enter(limiter)
        drain(tokens)
        start = vt.now
        waiter = asyncio.ensure_future(enter(limiter))
        await vt.advance(3.0)
        await leave(holder)  # permit at +3 s; 0.75 tokens, the next one at +4 s
        await vt.advance(0.9)
        assert not waiter.done()
        await vt.advance(0.1)
        assert waiter.done()
        await leave(await finished(waiter))
        assert vt.now - start == pytest.approx(4.0)

    async def test_warm_caller_holds_a_permit_while_it_waits_for_a_token(self) -> None:
        """A warm caller waits for its token (leaving the reserve) without a deadline and then proceeds."""
        vt = VirtualTime()
        tokens = make_local_tokens(vt, 60, reserve=2)
        drain(tokens)
        limiter = make_limiter(vt, tokens=tokens)
        warm = asyncio.ensure_future(enter(limiter, "warm"))
        await vt.advance(2.5)
        assert not warm.done()
        await vt.advance(0.5)
        await leave(await finished(warm))
        assert limiter.sheds == {}


class TestLmlLimiterWithHostBudget:
    @staticmethod
    def host_limiter(vt: VirtualTime, shared: HostBudgetShared, *, host_tokens: bool = False) -> LmlLimiter:
        host = HostBudget(shared, clock=vt.clock, sleep=vt.sleep)
        tokens: TokenSource = HostTokens(host, sleep=vt.sleep) if host_tokens else make_local_tokens(vt)
        return make_limiter(vt, max_concurrent=2, tokens=tokens, host=host)

    @staticmethod
    def host_snapshot(limiter: LmlLimiter) -> dict[str, object]:
        host = limiter.snapshot()["host"]
        assert isinstance(host, dict)
        return host

    async def test_second_limiter_waits_for_the_host_permit(self) -> None:
        """Two limiters sharing a one-permit host budget: the second caller enters only after the first leaves."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 600)
        first_limiter, second_limiter = self.host_limiter(vt, shared), self.host_limiter(vt, shared)
        first = await enter(first_limiter)
        second = asyncio.ensure_future(enter(second_limiter))
        await vt.advance(1.0)
        assert not second.done()
        assert (self.host_snapshot(second_limiter)["in_use"], self.host_snapshot(second_limiter)["live_waiting"]) == (
            1,
            1,
        )
        assert second_limiter.snapshot()["in_use"] == 1  # holds its local permit while waiting
        await leave(first)
        await vt.advance(0.1)
        second_cm = await finished(second)
        assert (self.host_snapshot(first_limiter)["in_use"], self.host_snapshot(first_limiter)["live_waiting"]) == (
            1,
            0,
        )
        await leave(second_cm)
        assert second_limiter.snapshot()["in_use"] == 0
        assert self.host_snapshot(second_limiter)["in_use"] == 0

    async def test_live_caller_is_shed_when_the_host_permit_is_held_elsewhere(self) -> None:
        """A live caller that cannot get a host permit within queue_wait_s is shed: a breaker failure."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 600)
        holder = await enter(self.host_limiter(vt, shared))
        limiter = self.host_limiter(vt, shared)
        start = vt.now
        waiter = asyncio.ensure_future(enter(limiter))
        await vt.advance(QUEUE_WAIT_S)
        with pytest.raises(LimiterShedError) as info:
            await finished(waiter)
        assert info.value.reason == "shed_limiter_saturated"
        assert vt.now - start == pytest.approx(QUEUE_WAIT_S)
        assert limiter.breaker.consecutive_failures == 1
        assert limiter.snapshot()["in_use"] == 0
        assert (self.host_snapshot(limiter)["in_use"], self.host_snapshot(limiter)["live_waiting"]) == (1, 0)
        await leave(holder)

    async def test_warm_caller_waits_for_the_host_permit_without_deadline(self) -> None:
        """A warm caller is not shed however long it waits for a host permit."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 600)
        holder = await enter(self.host_limiter(vt, shared))
        limiter = self.host_limiter(vt, shared)
        warm = asyncio.ensure_future(enter(limiter, "warm"))
        await vt.advance(2 * QUEUE_WAIT_S)
        assert not warm.done()
        await leave(holder)
        await vt.advance(0.1)
        await leave(await finished(warm))
        assert limiter.breaker.consecutive_failures == 0
        assert limiter.sheds == {}

    async def test_tokens_come_from_the_host_bucket(self) -> None:
        """With HostTokens the rate token is taken from the shared bucket."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(2, 10)
        limiter = self.host_limiter(vt, shared, host_tokens=True)
        async with limiter.slot():
            pass
        tokens = limiter.snapshot()["tokens"]
        assert isinstance(tokens, dict)
        assert (tokens["scope"], tokens["tokens"]) == ("host", 9)
        assert self.host_snapshot(limiter) == {"in_use": 0, "max_concurrent": 2, "live_waiting": 0, "tokens": 9}

    async def test_total_wait_over_permit_host_permit_and_token_is_bounded(self) -> None:
        """A live caller's waits for the host permit and then the token share one deadline."""
        vt = VirtualTime()
        shared = HostBudgetShared.create(1, 6)  # one host token every 10 s
        holder_limiter = self.host_limiter(vt, shared, host_tokens=True)
        limiter = self.host_limiter(vt, shared, host_tokens=True)
        holder = await enter(holder_limiter)
        for _ in range(5):
            await HostTokens(HostBudget(shared, clock=vt.clock, sleep=vt.sleep)).take("live", None)
        start = vt.now
        waiter = asyncio.ensure_future(enter(limiter))
        await vt.advance(3.0)
        await leave(holder)  # host permit at +3 s; the next token is 7 s away, 2 s are left
        await vt.advance(0.1)
        with pytest.raises(LimiterShedError) as info:
            await finished(waiter)
        assert info.value.reason == "shed_rate_limited"
        assert vt.now - start <= QUEUE_WAIT_S
        assert self.host_snapshot(limiter)["in_use"] == 0
        assert limiter.snapshot()["in_use"] == 0
