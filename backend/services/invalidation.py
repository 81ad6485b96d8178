"""LISTEN for the database's ``rotation_picker_invalidate`` notifications and drop stale answers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

logger = logging.getLogger(__name__)

CHANNEL = "rotation_picker_invalidate"
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


def parse_payload(payload: str) -> list[int] | None:
    """Rotation ids from a notification, or None meaning "drop everything" (all, or unreadable)."""
    try:
        body = json.loads(payload)
        if body.get("all"):
            return None
        ids = body["rotation_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return None
        return ids
    except (ValueError, KeyError, AttributeError, TypeError):
        return None


class InvalidationListener:
    """Hold one LISTEN connection, reconnecting with backoff; call back on every notification.

    While the connection is down notifications are lost, so after a reconnect ``on_all`` runs:
    everything cached may be stale.

    Args:
        dsn: PostgreSQL DSN.
        on_ids: called with the rotation ids whose answers changed.
        on_all: called when every row must be dropped.
        name: the process, for log lines.
        connect: asyncpg.connect (injectable for tests).
        sleep: asyncio.sleep (injectable for tests).
    """

    def __init__(
        self,
        dsn: str,
        *,
        on_ids: Callable[[list[int]], None],
        on_all: Callable[[], None],
        name: str,
        connect: Callable[[str], Awaitable[Any]] = asyncpg.connect,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._dsn = dsn
        self._on_ids = on_ids
        self._on_all = on_all
        self._name = name
        self._connect = connect
        self._sleep = sleep
        self.connected = asyncio.Event()
        self.notifications = 0

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        ids = parse_payload(payload)
        if ids is None:
            logger.info("invalidation all worker=%s", self._name)
            self._on_all()
        else:
            logger.debug("invalidation worker=%s rotation_ids=%s", self._name, ids)
            self._on_ids(ids)

    async def run(self) -> None:
        """Listen until cancelled."""
        delay = RETRY_FIRST_S
        ever_connected = False
        while True:
            try:
                conn = await self._connect(self._dsn)
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning(
                    "invalidation listener cannot connect worker=%s retryInS=%.0f error=%r", self._name, delay, exc
                )
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            closed = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                await conn.add_listener(CHANNEL, self._notified)
                if ever_connected:
                    logger.warning("invalidation listener reconnected worker=%s; dropping cached rows", self._name)
                    self._on_all()
                ever_connected = True
                delay = RETRY_FIRST_S
                self.connected.set()
                await closed.wait()
                logger.warning("invalidation listener lost its connection worker=%s", self._name)
            finally:
                self.connected.clear()
                if not conn.is_closed():
                    try:
                        await asyncio.wait_for(conn.close(), 2)
                    except (OSError, asyncio.TimeoutError, asyncpg.InterfaceError):
                        conn.terminate()
