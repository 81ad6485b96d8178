"""The host-wide LML budget across real processes: spawned workers, SIGKILLed holders and zombies."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.clients.limiter import HostTokens

SPAWN = multiprocessing.get_context("spawn")
START_TIMEOUT_S = 60.0  # a spawned interpreter imports the backend before it can signal


# -- children (module level: spawn pickles them by reference) ----------------------------------


def _child_cycles(
    shared: HostBudgetShared,
    counters: multiprocessing.sharedctypes.Synchronized[int],
    peak: multiprocessing.sharedctypes.Synchronized[int],
    done: multiprocessing.sharedctypes.Synchronized[int],
) -> None:
    """Two tasks doing 10 acquire/token/hold/release cycles each against the shared budget."""

    async def cycles() -> None:
        budget = HostBudget(shared)
        tokens = HostTokens(budget)
        for _ in range(10):
            index = await budget.acquire("live", None)
            await tokens.take("live", None)
            with counters.get_lock():
                counters.value += 1
                with peak.get_lock():
                    peak.value = max(peak.value, counters.value)
            await asyncio.sleep(0.005)  # the "LML call" the permit is held for
            with counters.get_lock():
                counters.value -= 1
            budget.release(index)
            with done.get_lock():
                done.value += 1

    async def main() -> None:
        await asyncio.gather(cycles(), cycles())

    asyncio.run(main())


def _hold_permit_until_killed(shared: HostBudgetShared, ready: multiprocessing.synchronize.Event) -> None:
    """Take a host permit, say so, then block until SIGKILLed (never releasing it)."""

    async def main() -> None:
        await HostBudget(shared).acquire("live", None)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _hold_lock_until_killed(shared: HostBudgetShared, ready: multiprocessing.synchronize.Event) -> None:
    """Take the host lock, say so, then block until SIGKILLed (never releasing it)."""
    shared.lock.acquire()
    ready.set()
    threading.Event().wait()


def _wait_live_until_killed(shared: HostBudgetShared, ready: multiprocessing.synchronize.Event) -> None:
    """Register as a live waiter for a permit (all held elsewhere), say so, then wait until SIGKILLed."""

    async def main() -> None:
        budget = HostBudget(shared)
        waiter = asyncio.ensure_future(budget.acquire("live", None))
        while budget.snapshot()["live_waiting"] == 0:
            await asyncio.sleep(0)
        ready.set()
        await waiter

    asyncio.run(main())


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def killed_child() -> Iterator[Callable[..., int]]:
    """Start a spawned child, wait until it signals, SIGKILL and reap it; returns the dead pid."""
    procs: list[multiprocessing.process.BaseProcess] = []

    def run(target: Callable[..., None], *args: Any) -> int:
        ready = SPAWN.Event()
        proc = SPAWN.Process(target=target, args=(*args, ready))
        procs.append(proc)
        proc.start()
        assert ready.wait(START_TIMEOUT_S), "the child never signalled"
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(START_TIMEOUT_S)
        assert proc.exitcode == -signal.SIGKILL
        return proc.pid

    yield run
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()


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
            proc.join(START_TIMEOUT_S)
        assert [proc.exitcode for proc in procs] == [0, 0, 0]
        assert done.value == 60
        assert 1 <= peak.value <= 2
        snap = HostBudget(shared).snapshot()
        assert (snap["in_use"], snap["live_waiting"]) == (0, 0)
        tokens = snap["tokens"]
        assert isinstance(tokens, float)
        assert tokens <= 600 - 60 + (time.monotonic() - started) * 10 + 0.01


class TestDeadProcesses:
    async def test_permit_of_a_sigkilled_process_is_reclaimed_only_when_none_is_free(
        self, killed_child: Callable[..., int], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A permit held by a SIGKILLed worker is taken over, with a warning, once every permit is in use."""
        shared = HostBudgetShared.create(2, 50, SPAWN)
        dead = killed_child(_hold_permit_until_killed, shared)
        assert list(shared.permits) == [dead, 0]
        budget = HostBudget(shared)
        assert await budget.acquire("live", time.monotonic()) == 1  # a free one first
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            assert await budget.acquire("live", time.monotonic()) == 0  # then the dead pid's
        assert list(shared.permits) == [os.getpid(), os.getpid()]
        assert f"held by dead pid {dead}" in caplog.text

    async def test_lock_of_a_sigkilled_holder_is_force_released(
        self, killed_child: Callable[..., int], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A lock left held by a SIGKILLed process is force-released after stale_lock_s, with a warning."""
        shared = HostBudgetShared.create(1, 50, SPAWN)
        killed_child(_hold_lock_until_killed, shared)
        budget = HostBudget(shared, stale_lock_s=0.2)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            assert await asyncio.wait_for(budget.acquire("live", None), START_TIMEOUT_S) == 0
        assert time.monotonic() - started >= 0.2
        assert "assuming a dead holder" in caplog.text
        assert shared.lock.acquire(block=False)  # and released again after the critical section
        shared.lock.release()

    async def test_live_registration_of_a_sigkilled_process_does_not_hold_warm_callers_back(
        self, killed_child: Callable[..., int], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A worker SIGKILLed while waiting as a live caller leaves a registration that warm callers drop."""
        shared = HostBudgetShared.create(1, 50, SPAWN)
        budget = HostBudget(shared)
        held = await budget.acquire("live", None)
        dead = killed_child(_wait_live_until_killed, shared)
        assert budget.snapshot()["live_waiting"] == 1
        budget.release(held)
        with caplog.at_level(logging.WARNING, logger="backend.clients.host_budget"):
            assert await budget.acquire("warm", time.monotonic()) == 0
        assert budget.snapshot()["live_waiting"] == 0
        assert f"dead pid {dead}" in caplog.text

    async def test_permit_of_a_zombie_is_reclaimed(self) -> None:
        """A holder that exited but was not reaped yet (a zombie) counts as dead."""
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
            shared = HostBudgetShared.create(1, 50, SPAWN)
            assert await HostBudget(shared, pid=proc.pid).acquire("live", None) == 0
            assert await HostBudget(shared).acquire("live", time.monotonic()) == 0
            assert list(shared.permits) == [os.getpid()]
        finally:
            proc.wait()
