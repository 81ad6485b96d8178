"""Time and scheduling fakes shared by the unit tests: nothing here waits on the wall clock."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def settle(steps: int = 20) -> None:
    """Let every ready task run a few steps (yields only, no wall-clock waiting)."""
    for _ in range(steps):
        await asyncio.sleep(0)


async def finished(task: asyncio.Future[T]) -> T:
    """The task's result; fails (instead of hanging) when the task is still waiting."""
    await settle()
    assert task.done(), "the task is still waiting"
    return await task


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class VirtualTime:
    """A fake clock plus a sleep that ends only when :meth:`advance` moves the clock past its end."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.requested: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.requested.append(seconds)
        entry = (self.now + max(0.0, seconds), asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move the clock forward, waking each sleeper at its own end time (pollers see every step)."""
        target = self.now + seconds
        await settle()
        while True:
            due = [end for end, fut in self._sleepers if end <= target and not fut.done()]
            if not due:
                break
            self.now = max(self.now, min(due))
            for end, fut in self._sleepers:
                if end <= self.now and not fut.done():
                    fut.set_result(None)
            await settle()
        self.now = target
        await settle()
