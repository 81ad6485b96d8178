"""Client-side protection for LML: a circuit breaker, prioritised permits and a rate limit with live priority.

Two priorities exist. ``live`` is a DJ waiting for the picker; ``warm`` is the background walk.
Live callers come first everywhere: for permits (a warm caller never takes one while a live caller
waits) and for rate tokens (the walk leaves a reserve of tokens to live callers, so a DJ usually
waits for nothing). A live caller's total wait is bounded by its deadline; a warm caller waits as
long as it takes but can be cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from backend.errors import LimiterShedError, LmlTimeoutError, LmlUnavailableError

from .host_budget import LIVE_HOLDBACK_S, HostBudget

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

PRIORITIES = ("live", "warm")
# Errors that mean LML is unwell (not merely that it said no): they open the breaker.
BREAKER_FAILURES = (LmlTimeoutError, LmlUnavailableError)


def check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown limiter priority {priority!r}")


class CircuitBreaker:
    """A consecutive-failure breaker with a single half-open probe.

    ``closed`` admits everything. ``threshold`` consecutive failures open it; while ``open`` nothing is
    admitted until ``open_s`` has elapsed, then it is ``half_open`` and admits exactly one probe. The
    probe's success closes the breaker, its failure re-opens it for another ``open_s``.

    Args:
        threshold: consecutive failures that open the breaker.
        open_s: seconds the breaker stays open before admitting a probe.
        clock: monotonic seconds; tests inject a fake one.
    """

    def __init__(self, threshold: int, open_s: float, clock: Clock = time.monotonic) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self._threshold = threshold
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self.opened = 0  # times the breaker opened (a metric)

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self._open_s:
            return "open"
        return "half_open"

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """Whether a call may proceed; in ``half_open`` the first caller becomes the probe."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        """A call reached LML and got an answer in time: close the breaker."""
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        """A call timed out, failed on the network or got a 5xx (or was shed): open or re-open if due."""
        self._failures += 1
        self._probe_in_flight = False
        if self._opened_at is not None or self._failures >= self._threshold:
            if self._opened_at is None or self.state != "open":
                self.opened += 1
            self._opened_at = self._clock()

    def release_probe(self) -> None:
        """The half-open probe ended with no verdict (cancelled): let the next caller probe."""
        self._probe_in_flight = False


class TokenSource(Protocol):
    """Where rate tokens come from: this process, the host, or the whole fleet."""

    async def take(self, priority: str, deadline: float | None) -> None:
        """Wait for a token and take it.

        Args:
            priority: ``live`` or ``warm`` (warm leaves the reserve to live callers).
            deadline: give up at this monotonic time (live callers); None waits until cancelled.

        Raises:
            LimiterShedError: ``shed_rate_limited`` when the deadline passes first.
        """
        ...

    def snapshot(self) -> dict[str, object]: ...


class TokenBucket:
    """A continuously refilling token bucket: capacity and refill are both ``rate_per_min`` per minute.

    Args:
        rate_per_min: capacity, and tokens added per minute; the bucket starts full.
        clock: monotonic seconds; tests inject a fake one.
    """

    def __init__(self, rate_per_min: int, clock: Clock = time.monotonic) -> None:
        if rate_per_min < 1:
            raise ValueError("rate_per_min must be >= 1")
        self._capacity = float(rate_per_min)
        self._per_s = rate_per_min / 60.0
        self._clock = clock
        self._tokens = self._capacity
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._per_s)
        self._last = now

    @property
    def tokens(self) -> float:
        """Tokens available now (fractional)."""
        self._refill()
        return self._tokens

    def try_take(self, keep: float = 0.0) -> float:
        """Take one token if more than ``keep`` remain after it; return 0, else the seconds until one could be."""
        self._refill()
        if self._tokens >= 1.0 + keep:
            self._tokens -= 1.0
            return 0.0
        return (1.0 + keep - self._tokens) / self._per_s


async def wait_for_token(
    try_take: Callable[[], Awaitable[float]],
    deadline: float | None,
    clock: Clock,
    sleep: Sleep,
    *,
    max_wait_s: float = 1.0,
) -> None:
    """Poll ``try_take`` (0 = taken, else seconds to wait) until it succeeds or ``deadline`` passes."""
    while True:
        wait = await try_take()
        if wait <= 0:
            return
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0 or wait > remaining:
                raise LimiterShedError("shed_rate_limited")
            wait = min(wait, remaining)
        await sleep(min(wait, max_wait_s))


class LocalTokens:
    """This process's own token bucket (single-process mode without a database, unit tests)."""

    def __init__(
        self, rate_per_min: int, *, reserve: int = 0, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.bucket = TokenBucket(rate_per_min, clock)
        self._reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._live_waiting = 0

    async def take(self, priority: str, deadline: float | None) -> None:
        check_priority(priority)
        live = priority == "live"

        async def attempt() -> float:
            if live:
                return self.bucket.try_take()
            if self._live_waiting:
                return LIVE_HOLDBACK_S  # a live caller waits here: it takes the next token
            return self.bucket.try_take(self._reserve)

        if live:
            self._live_waiting += 1
        try:
            await wait_for_token(attempt, deadline, self._clock, self._sleep)
        finally:
            if live:
                self._live_waiting -= 1

    def snapshot(self) -> dict[str, object]:
        return {"scope": "process", "tokens": round(self.bucket.tokens, 2)}


class HostTokens:
    """The host's shared-memory token bucket (every worker and the walk of one host)."""

    def __init__(self, host: HostBudget, *, reserve: int = 0, sleep: Sleep = asyncio.sleep) -> None:
        self._host = host
        self._reserve = reserve
        self._sleep = sleep

    async def take(self, priority: str, deadline: float | None) -> None:
        check_priority(priority)
        if priority == "warm":

            async def warm_attempt() -> float:
                return await self._host.try_take_token(self._reserve, behind_live=True)

            await wait_for_token(warm_attempt, deadline, self._host.clock, self._sleep)
            return

        async def live_attempt() -> float:
            return await self._host.try_take_token()

        async with self._host.live_waiter():  # a live caller on any worker takes the next token
            await wait_for_token(live_attempt, deadline, self._host.clock, self._sleep)

    def snapshot(self) -> dict[str, object]:
        return {"scope": "host", **self._host.snapshot()}


class LmlLimiter:
    """Admission control for every LML call: breaker, prioritised permits, then a rate token.

    ``live`` callers wait at most ``queue_wait_s`` in total (permits and token) and are then shed.
    ``warm`` callers only get a permit when no live caller is waiting and leave the token reserve
    to live callers; they wait without a deadline but can be cancelled. Within a priority, permits
    are granted first come, first served.

    The breaker learns from what happens inside :meth:`slot`: a timeout, a network failure or an LML
    5xx escaping the block (``BREAKER_FAILURES``), or a saturation shed, is a failure; a normal exit or
    any other exception is a success (LML answered, even if with a 4xx); a cancellation is neither.

    Args:
        max_concurrent: permits in this process (LML calls in flight at once).
        queue_wait_s: longest a live caller waits before it is shed.
        breaker: the circuit breaker consulted before queueing.
        tokens: the rate limit (this process, the host, or the fleet).
        clock: monotonic seconds.
        sleep: awaited for the queue-wait deadline; tests inject a fake one.
        host: optional host-wide permits shared with the other processes of the host.
    """

    def __init__(
        self,
        max_concurrent: int,
        queue_wait_s: float,
        breaker: CircuitBreaker,
        tokens: TokenSource,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        host: HostBudget | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self._max = max_concurrent
        self._queue_wait_s = queue_wait_s
        self.breaker = breaker
        self.tokens = tokens
        self._clock = clock
        self._sleep = sleep
        self._host = host
        self._in_use = 0
        self._waiters: dict[str, collections.deque[asyncio.Future[None]]] = {p: collections.deque() for p in PRIORITIES}
        self.sheds: collections.Counter[str] = collections.Counter()
        self.wait_s_total = 0.0

    @contextlib.asynccontextmanager
    async def slot(self, priority: str = "live") -> AsyncIterator[None]:
        """Hold one permit (and one rate token) for the duration of an LML call.

        Raise one of ``BREAKER_FAILURES`` inside the block to report LML's ill health to the breaker.

        Raises:
            LimiterShedError: ``shed_breaker_open``, ``shed_limiter_saturated`` or ``shed_rate_limited``;
                nothing was sent.
            ValueError: ``priority`` is not ``"live"`` or ``"warm"``.
        """
        check_priority(priority)
        is_probe = self.breaker.state == "half_open"
        if not self.breaker.allow():
            self.sheds["shed_breaker_open"] += 1
            raise LimiterShedError("shed_breaker_open")
        started = self._clock()
        deadline = None if priority == "warm" else started + self._queue_wait_s
        verdict = False
        host_permit: int | None = None
        local_permit = False
        try:
            try:
                await self._acquire(priority, deadline)
                local_permit = True
                if self._host is not None:
                    host_permit = await self._host.acquire(priority, deadline)
                await self.tokens.take(priority, deadline)
            except LimiterShedError as exc:
                self.sheds[exc.reason] += 1
                if exc.reason == "shed_limiter_saturated":
                    self.breaker.record_failure()
                    verdict = True
                raise
            finally:
                self.wait_s_total += self._clock() - started
            try:
                yield
            except BREAKER_FAILURES:
                self.breaker.record_failure()
                verdict = True
                raise
            except Exception:
                self.breaker.record_success()
                verdict = True
                raise
            self.breaker.record_success()
            verdict = True
        finally:
            if host_permit is not None and self._host is not None:
                self._host.release(host_permit)
            if local_permit:
                self._release()
            if is_probe and not verdict:
                self.breaker.release_probe()

    async def _acquire(self, priority: str, deadline: float | None) -> None:
        live_waiting = bool(self._waiters["live"])
        own_queue_empty = not self._waiters[priority]
        if self._in_use < self._max and not live_waiting and own_queue_empty:
            self._in_use += 1
            return
        queue = self._waiters[priority]
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(fut)
        timer: asyncio.Future[None] | None = None
        try:
            if deadline is not None:
                timer = asyncio.ensure_future(self._sleep(max(0.0, deadline - self._clock())))
                await asyncio.wait((fut, timer), return_when=asyncio.FIRST_COMPLETED)
            else:
                await fut
        except BaseException:
            # Cancelled while waiting. If the permit was already handed to us, pass it on.
            if fut.done() and not fut.cancelled():
                self._release()
            else:
                self._forget(queue, fut)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if fut.done():
            return  # granted (possibly at the same moment the deadline fired: keep it)
        self._forget(queue, fut)
        raise LimiterShedError("shed_limiter_saturated")

    @staticmethod
    def _forget(queue: collections.deque[asyncio.Future[None]], fut: asyncio.Future[None]) -> None:
        fut.cancel()
        with contextlib.suppress(ValueError):
            queue.remove(fut)

    def _release(self) -> None:
        """Hand the permit to the next live waiter, else the next warm one, else return it."""
        for priority in PRIORITIES:
            queue = self._waiters[priority]
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self._in_use -= 1

    @property
    def queue_depth(self) -> int:
        """Callers waiting for a permit, both priorities."""
        return sum(len(q) for q in self._waiters.values())

    def snapshot(self) -> dict[str, object]:
        """Current state for a status endpoint (plus ``"host"`` when a host budget is set)."""
        snap: dict[str, object] = {
            "in_use": self._in_use,
            "max_concurrent": self._max,
            "waiting_live": len(self._waiters["live"]),
            "waiting_warm": len(self._waiters["warm"]),
            "breaker": self.breaker.state,
            "tokens": self.tokens.snapshot(),
            "sheds": dict(self.sheds),
        }
        if self._host is not None:
            snap["host"] = self._host.snapshot()
        return snap
