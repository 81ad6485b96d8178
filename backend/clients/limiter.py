"""Client-side protection for LML: a circuit breaker, a token bucket and a prioritised permit limiter."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from backend.errors import LimiterShedError, LmlTimeoutError

from .host_budget import HostBudget

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

PRIORITIES = ("live", "warm")


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
        """A call timed out (or was shed for saturation): count it, and open or re-open if due."""
        self._failures += 1
        self._probe_in_flight = False
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()

    def release_probe(self) -> None:
        """The half-open probe ended with no verdict (cancelled): let the next caller probe."""
        self._probe_in_flight = False


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

    def try_take(self) -> bool:
        """Take one token if one is available, without waiting."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def take(self, sleep: Sleep = asyncio.sleep) -> None:
        """Wait until a token is available and take it, re-checking after every sleep."""
        while not self.try_take():
            await sleep((1.0 - self._tokens) / self._per_s)


class LmlLimiter:
    """Shared admission control for every LML call: breaker, FIFO permits with priority, rate limit.

    ``live`` callers (a DJ waiting) wait at most ``queue_wait_s`` for a permit and are then shed.
    ``warm`` callers (the background warmer) only get a permit when no live caller is waiting, so a
    live request never queues behind more than the warm calls already running; they wait without a
    deadline but can be cancelled. Within a priority, permits are granted first come, first served.

    The breaker learns from what happens inside :meth:`slot`: an :class:`LmlTimeoutError` escaping
    the block, or a saturation shed, is a failure; a normal exit or any other exception is a
    success (LML answered, even if with an error); a cancellation is neither.

    Args:
        max_concurrent: permits (LML calls in flight at once).
        rate_per_min: token bucket capacity and refill per minute.
        queue_wait_s: longest a live caller waits for a permit before ``shed_limiter_saturated``.
        breaker: the circuit breaker consulted before queueing.
        clock: monotonic seconds for the token bucket.
        sleep: awaited for token refills and the queue-wait deadline; tests inject a fake one.
        host: optional host-wide budget shared with the other processes. After the local permit, a
            caller also takes a host permit (live: within what is left of ``queue_wait_s``; warm: no
            deadline) and its rate token comes from the host bucket instead of the local one.
    """

    def __init__(
        self,
        max_concurrent: int,
        rate_per_min: int,
        queue_wait_s: float,
        breaker: CircuitBreaker,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        host: HostBudget | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self._max = max_concurrent
        self._queue_wait_s = queue_wait_s
        self.breaker = breaker
        self.bucket = TokenBucket(rate_per_min, clock)
        self._sleep = sleep
        self._host = host
        self._in_use = 0
        self._waiters: dict[str, collections.deque[asyncio.Future[None]]] = {p: collections.deque() for p in PRIORITIES}

    @contextlib.asynccontextmanager
    async def slot(self, priority: str = "live") -> AsyncIterator[None]:
        """Hold one permit (and one rate token) for the duration of an LML call.

        Raise :class:`LmlTimeoutError` inside the block to report a timeout to the breaker.

        Raises:
            LimiterShedError: ``shed_breaker_open`` or ``shed_limiter_saturated``; nothing was sent.
            ValueError: ``priority`` is not ``"live"`` or ``"warm"``.
        """
        if priority not in PRIORITIES:
            raise ValueError(f"unknown limiter priority {priority!r}")
        is_probe = self.breaker.state == "half_open"
        if not self.breaker.allow():
            raise LimiterShedError("shed_breaker_open")
        host = self._host
        host_deadline = None if host is None or priority == "warm" else host.clock() + self._queue_wait_s
        verdict = False
        try:
            try:
                await self._acquire(priority)
            except LimiterShedError:
                self.breaker.record_failure()
                verdict = True
                raise
            host_permit: int | None = None
            try:
                if host is None:
                    await self.bucket.take(self._sleep)
                else:
                    try:
                        host_permit = await host.acquire(priority, host_deadline)
                    except LimiterShedError:
                        self.breaker.record_failure()
                        verdict = True
                        raise
                    await host.take_token()
                try:
                    yield
                except LmlTimeoutError:
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
                if host is not None and host_permit is not None:
                    host.release(host_permit)
                self._release()
        finally:
            if is_probe and not verdict:
                self.breaker.release_probe()

    async def _acquire(self, priority: str) -> None:
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
            if priority == "live":
                timer = asyncio.ensure_future(self._sleep(self._queue_wait_s))
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
            "tokens": round(self.bucket.tokens, 2),
            "breaker": self.breaker.state,
        }
        if self._host is not None:
            snap["host"] = self._host.snapshot()
        return snap
