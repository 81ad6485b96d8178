"""Small asyncio helpers."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; return whether it is set.

    Unlike ``asyncio.wait_for(event.wait(), timeout)`` on Python < 3.12, a cancellation that arrives
    as the event is set is never swallowed (bpo-42130), so a background loop built on this always
    stops when cancelled.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
