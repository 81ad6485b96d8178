"""A host-wide LML budget (permits with live priority, plus a token bucket) shared by every process."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import math
import multiprocessing
import multiprocessing.context
import multiprocessing.synchronize
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from backend.errors import LimiterShedError

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Slots of the state array.
_TOKENS, _LAST_REFILL, _RATE_PER_MIN, _LOCK_GENERATION = range(4)
_STATE_SIZE = 4

_LOCK_POLL_S = 0.0002
_POLL_MIN_S = 0.0005
_POLL_MAX_S = 0.01
# How long a warm caller holds back before looking again while a live caller waits for a token.
LIVE_HOLDBACK_S = 0.05
_TOKEN_RECHECK_S = 0.05
_PARTS = ("lock", "permits", "state", "waiters")


@dataclasses.dataclass(frozen=True)
class HostBudgetShared:
    """The shared-memory state of a :class:`HostBudget`: multiprocessing primitives only.

    Create it once in the main process (before workers spawn) and hand it to every process, e.g.
    through Sanic's ``app.shared_ctx`` with :meth:`to_shared_ctx` / :meth:`from_shared_ctx`.

    Attributes:
        lock: guards every read-modify-write of the arrays below.
        permits: one int per permit, the pid holding it (0 = free).
        state: doubles: tokens, last refill (``time.monotonic``), rate per minute, lock generation.
        waiters: ``(pid, count)`` pairs: live callers currently waiting for a permit, per process.
    """

    lock: multiprocessing.synchronize.Lock
    permits: ctypes.Array[ctypes.c_int]
    state: ctypes.Array[ctypes.c_double]
    waiters: ctypes.Array[ctypes.c_int]

    @classmethod
    def create(
        cls,
        max_concurrent: int,
        rate_per_min: int,
        mp_context: multiprocessing.context.BaseContext | None = None,
        *,
        max_processes: int = 64,
    ) -> HostBudgetShared:
        """Allocate the shared state: all permits free, the bucket full.

        Args:
            max_concurrent: permits for the whole host.
            rate_per_min: token bucket capacity and refill per minute for the whole host.
            mp_context: the multiprocessing context (default: spawn, as Sanic uses).
            max_processes: processes that can register live waiters at the same time.
        """
        if max_concurrent < 1 or rate_per_min < 1 or max_processes < 1:
            raise ValueError("max_concurrent, rate_per_min and max_processes must be >= 1")
        ctx = mp_context or multiprocessing.get_context("spawn")
        state = cast("ctypes.Array[ctypes.c_double]", ctx.Array("d", _STATE_SIZE, lock=False))
        state[_TOKENS] = float(rate_per_min)
        state[_LAST_REFILL] = math.nan  # set by the first refill, in the caller's clock
        state[_RATE_PER_MIN] = float(rate_per_min)
        return cls(
            lock=ctx.Lock(),
            permits=cast("ctypes.Array[ctypes.c_int]", ctx.Array("i", max_concurrent, lock=False)),
            state=state,
            waiters=cast("ctypes.Array[ctypes.c_int]", ctx.Array("i", 2 * max_processes, lock=False)),
        )

    def to_shared_ctx(self, shared_ctx: object, prefix: str = "lml_budget") -> None:
        """Store each primitive as its own attribute (``<prefix>_lock`` ...), so Sanic shares them."""
        for part in _PARTS:
            setattr(shared_ctx, f"{prefix}_{part}", getattr(self, part))

    @classmethod
    def from_shared_ctx(cls, shared_ctx: object, prefix: str = "lml_budget") -> HostBudgetShared | None:
        """Rebuild from :meth:`to_shared_ctx` attributes; None when absent (single-process mode)."""
        parts: dict[str, Any] = {part: getattr(shared_ctx, f"{prefix}_{part}", None) for part in _PARTS}
        if any(value is None for value in parts.values()):
            return None
        return cls(**parts)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no procfs (or the process just vanished): trust os.kill


class HostBudget:
    """One process's async view of a :class:`HostBudgetShared`.

    Nothing here blocks the event loop: the lock is taken with ``acquire(block=False)`` and polled,
    and permits are polled with a short backoff. Live callers register as waiters while they poll;
    warm callers only claim a permit when no live caller on the host is registered.

    Crash recovery: a permit or waiter registration owned by a dead pid is reclaimed. A lock nobody
    has managed to take for ``stale_lock_s`` is assumed held by a SIGKILLed process and force-released;
    nothing ever blocks on the lock (it is polled), so a dead holder costs at most ``stale_lock_s``.
    The trade-off: a holder that is merely frozen that long (SIGSTOP, a debugger) loses mutual
    exclusion for one critical section; the alternative is every process deadlocking forever.

    Args:
        shared: the host-wide state.
        clock: monotonic seconds, comparable across processes (``time.monotonic`` on Linux).
        sleep: awaited between polls; tests inject a fake one.
        pid: the pid recorded as permit owner (default: this process).
        stale_lock_s: how long the lock may stay unavailable before it is force-released.
    """

    def __init__(
        self,
        shared: HostBudgetShared,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        pid: int | None = None,
        stale_lock_s: float = 2.0,
    ) -> None:
        self._shared = shared
        self.clock = clock
        self._sleep = sleep
        self._pid = os.getpid() if pid is None else pid
        self._stale_lock_s = stale_lock_s

    # -- the lock -------------------------------------------------------------------------------

    def _locked(self) -> None:
        self._shared.state[_LOCK_GENERATION] += 1

    def _unlock(self) -> None:
        with contextlib.suppress(ValueError):  # force-released by another process while we stalled
            self._shared.lock.release()

    def _force_release(self) -> None:
        logger.warning(
            "LML host budget lock unavailable for %.1fs: assuming a dead holder, releasing it", self._stale_lock_s
        )
        self._unlock()

    async def _lock(self) -> None:
        generation, since = math.nan, 0.0
        while not self._shared.lock.acquire(block=False):
            now, current = self.clock(), self._shared.state[_LOCK_GENERATION]
            if current != generation:  # someone got the lock meanwhile: not stuck
                generation, since = current, now
            elif now - since >= self._stale_lock_s:
                self._force_release()
                since = now
            await self._sleep(_LOCK_POLL_S)
        self._locked()

    # -- permits --------------------------------------------------------------------------------

    async def acquire(self, priority: str, deadline: float | None) -> int:
        """Claim a host permit, waiting as needed.

        Args:
            priority: ``"live"`` (registers as a waiter, so warm callers hold back) or ``"warm"``.
            deadline: give up at this :attr:`clock` time; None waits until cancelled.

        Returns:
            The permit index, for :meth:`release`.

        Raises:
            LimiterShedError: ``shed_limiter_saturated`` when the deadline passes.
            ValueError: unknown priority.
        """
        if priority not in ("live", "warm"):
            raise ValueError(f"unknown limiter priority {priority!r}")
        live, registered, delay = priority == "live", False, _POLL_MIN_S
        try:
            while True:
                await self._lock()
                try:
                    index = self._claim(live)
                    if index is not None:
                        if registered:
                            self._change_registration(-1)
                            registered = False
                        return index
                    if live and not registered:
                        registered = self._change_registration(+1)
                finally:
                    self._unlock()
                wait = delay if deadline is None else min(delay, deadline - self.clock())
                if wait <= 0:
                    raise LimiterShedError("shed_limiter_saturated")
                await self._sleep(wait)
                delay = min(delay * 2, _POLL_MAX_S)
        finally:
            if registered:
                # Cancelled while waiting: deregister without blocking the event loop. Shielded, so
                # a second cancellation cannot leave the registration behind (a dead pid's would be
                # reaped; a live one's would hold every warm caller back).
                await asyncio.shield(self._deregister())

    async def _deregister(self) -> None:
        await self._lock()
        try:
            self._change_registration(-1)
        finally:
            self._unlock()

    def _claim(self, live: bool) -> int | None:
        if not live and self._live_waiting(reap=True):
            return None
        permits = self._shared.permits
        for index in range(len(permits)):
            if permits[index] == 0:
                permits[index] = self._pid
                return index
        for index in range(len(permits)):
            owner = permits[index]
            if owner == 0 or not _alive(owner):  # 0: released (lock-free) since the first pass
                if owner != 0:
                    logger.warning("LML host permit %d held by dead pid %d: reclaiming it", index, owner)
                permits[index] = self._pid
                return index
        return None

    def release(self, index: int) -> None:
        """Return a permit from :meth:`acquire` (lock-free: only its owner writes a held slot)."""
        permits = self._shared.permits
        if permits[index] != self._pid:
            logger.warning("LML host permit %d released by pid %d but owned by %d", index, self._pid, permits[index])
            return
        permits[index] = 0

    # -- live waiters, counted per process so a dead process's registrations can be dropped ------

    def _live_waiting(self, *, reap: bool = False) -> int:
        waiters, total = self._shared.waiters, 0
        for i in range(0, len(waiters), 2):
            if waiters[i + 1] > 0:
                if reap and not _alive(waiters[i]):
                    logger.warning("Dropping %d live LML waiter(s) of dead pid %d", waiters[i + 1], waiters[i])
                    waiters[i + 1] = 0
                else:
                    total += waiters[i + 1]
        return total

    def _change_registration(self, delta: int) -> bool:
        """Add ``delta`` to this pid's live-waiter count (lock held); False if there was no room."""
        waiters = self._shared.waiters
        pairs = range(0, len(waiters), 2)
        mine = next((i for i in pairs if waiters[i] == self._pid and waiters[i + 1] > 0), None)
        if mine is None and delta > 0:
            mine = next((i for i in pairs if waiters[i + 1] == 0), None)
            if mine is None:
                self._live_waiting(reap=True)
                mine = next((i for i in pairs if waiters[i + 1] == 0), None)
            if mine is None:
                logger.warning("LML host budget waiter table full: live caller in pid %d waits unregistered", self._pid)
                return False
            waiters[mine] = self._pid
        if mine is not None:
            waiters[mine + 1] = max(0, waiters[mine + 1] + delta)
        return True

    # -- token bucket ---------------------------------------------------------------------------

    def _tokens_now(self) -> tuple[float, float]:
        state = self._shared.state
        rate, now, last = state[_RATE_PER_MIN], self.clock(), state[_LAST_REFILL]
        elapsed = 0.0 if math.isnan(last) else max(0.0, now - last)
        return min(rate, state[_TOKENS] + elapsed * rate / 60.0), now

    @contextlib.asynccontextmanager
    async def live_waiter(self) -> AsyncIterator[None]:
        """Be counted as a live caller waiting (warm callers hold back) for the duration of the block."""
        await self._lock()
        try:
            registered = self._change_registration(+1)
        finally:
            self._unlock()
        try:
            yield
        finally:
            if registered:
                await asyncio.shield(self._deregister())

    async def try_take_token(self, keep: float = 0.0, *, behind_live: bool = False) -> float:
        """Take a token from the host-wide bucket if more than ``keep`` remain after it.

        Args:
            keep: tokens to leave in the bucket.
            behind_live: take nothing while a live caller on the host waits (see :meth:`live_waiter`).

        Returns:
            0 when a token was taken, else the seconds until one could be.
        """
        await self._lock()
        try:
            if behind_live and self._live_waiting(reap=True):
                return LIVE_HOLDBACK_S
            tokens, now = self._tokens_now()
            state = self._shared.state
            state[_LAST_REFILL] = now
            if tokens >= 1.0 + keep:
                state[_TOKENS] = tokens - 1.0
                return 0.0
            state[_TOKENS] = tokens
            return (1.0 + keep - tokens) * 60.0 / state[_RATE_PER_MIN]
        finally:
            self._unlock()

    def snapshot(self) -> dict[str, object]:
        """Host-wide state for a status endpoint (read without the lock, so only approximately consistent)."""
        permits = self._shared.permits
        return {
            "in_use": sum(1 for owner in permits if owner != 0),
            "max_concurrent": len(permits),
            "live_waiting": self._live_waiting(),
            "tokens": round(self._tokens_now()[0], 2),
        }
