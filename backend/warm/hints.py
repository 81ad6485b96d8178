"""LISTEN for what may have changed: the station's cdc channels, the service's own hints and new answers.

Notifications are hints, never the truth: a hinted row is re-checked against the station (its
inputs fingerprint), so a duplicate, late or irrelevant notification costs one query and never a
wrong answer. While the connection is down notifications are lost, so after a reconnect
``on_missed`` runs (re-check everything cached, read what is new).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from backend.aio import wait_event
from backend.db.errors import DATABASE_ERRORS
from backend.db.schemas import CDC_CHANNEL, CDC_ERROR_CHANNEL, CDC_OVERSIZED_CHANNEL, Schemas

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
KEEPALIVE_S = 10.0
KEEPALIVE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Hint:
    """What one notification says. ``rotation_ids``/``library_ids`` may be empty; ``answers`` means new answers."""

    rotation_ids: tuple[int, ...] = ()
    library_ids: tuple[int, ...] = ()
    answers: bool = False
    unreadable: bool = False


NOTHING = Hint()
UNREADABLE = Hint(unreadable=True)


def _ints(values: Any) -> tuple[int, ...]:
    out = []
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            out.append(value)
        elif isinstance(value, str) and value.isdigit():
            out.append(int(value))
    return tuple(out)


def parse(channel: str, payload: str, schemas: Schemas) -> Hint:
    """Turn a notification into a :class:`Hint` (station.md §1 for the cdc shapes)."""
    if channel == schemas.answers_channel:
        return Hint(answers=True)
    if channel == CDC_ERROR_CHANNEL:
        return UNREADABLE  # a station change failed to notify: anything may have changed
    try:
        body = json.loads(payload)
        if not isinstance(body, dict):
            return UNREADABLE
        if channel == schemas.hints_channel:
            return Hint(library_ids=_ints(body.get("library_ids") or ()))
        if body.get("table") != "rotation" or body.get("schema", schemas.station) != schemas.station:
            return NOTHING  # another table's change: no picker answer depends on it
        if channel == CDC_CHANNEL:
            data = body.get("data")
            return Hint(rotation_ids=_ints([data.get("id")])) if isinstance(data, dict) else UNREADABLE
        ids = _ints([body.get("primary_key")])  # cdc_oversized: the row's id only
        return Hint(rotation_ids=ids) if ids else UNREADABLE
    except (ValueError, TypeError):
        return UNREADABLE


class HintListener:
    """Hold one LISTEN connection (reconnecting with backoff) and hand each hint to ``on_hint``.

    Args:
        dsn: PostgreSQL DSN.
        schemas: the schema names (channel names and the station schema to filter on).
        on_hint: called with every notification's :class:`Hint` (an unreadable one too).
        on_missed: called after a reconnect: notifications may have been lost.
        name: the process, for log lines.
        connect: asyncpg.connect (injectable for tests).
        sleep: asyncio.sleep (injectable for tests).
    """

    def __init__(
        self,
        dsn: str,
        schemas: Schemas,
        *,
        on_hint: Callable[[Hint], None],
        on_missed: Callable[[], None],
        name: str,
        connect: Callable[[str], Awaitable[Any]] = asyncpg.connect,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._dsn = dsn
        self._schemas = schemas
        self._on_hint = on_hint
        self._on_missed = on_missed
        self._name = name
        self._connect = connect
        self._sleep = sleep
        self.channels = (
            CDC_CHANNEL,
            CDC_OVERSIZED_CHANNEL,
            CDC_ERROR_CHANNEL,
            schemas.hints_channel,
            schemas.answers_channel,
        )
        self.connected = asyncio.Event()
        self.notifications = 0
        self.reconnects = 0

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.notifications += 1
        hint = parse(channel, payload, self._schemas)
        if hint is NOTHING:
            return
        if hint.unreadable:
            logger.warning("hint unreadable worker=%s channel=%s; re-checking everything", self._name, channel)
        self._on_hint(hint)

    async def _watch(self, conn: Any, closed: asyncio.Event) -> None:
        """Return when the connection closed, or stopped answering a periodic ping (a silent network)."""
        while True:
            if await wait_event(closed, KEEPALIVE_S):
                return
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), KEEPALIVE_TIMEOUT_S)
            except DATABASE_ERRORS:
                return

    async def run(self) -> None:
        """Listen until cancelled."""
        delay = RETRY_FIRST_S
        ever_connected = False
        while True:
            try:
                conn = await self._connect(self._dsn)
            except DATABASE_ERRORS as exc:
                logger.warning("hint listener cannot connect worker=%s retryInS=%.0f error=%r", self._name, delay, exc)
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            closed = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                for channel in self.channels:
                    await conn.add_listener(channel, self._notified)
                if ever_connected:
                    self.reconnects += 1
                    logger.warning("hint listener reconnected worker=%s; re-checking cached rows", self._name)
                # Also on the first connection: what changed between loading the answers and now
                # was never notified to this process.
                self._on_missed()
                ever_connected = True
                delay = RETRY_FIRST_S
                self.connected.set()
                await self._watch(conn, closed)
                logger.warning("hint listener lost its connection worker=%s", self._name)
            except DATABASE_ERRORS as exc:
                # E.g. LISTEN refused on a standby after a failover: back off as for a failed connect.
                logger.warning("hint listener failed worker=%s retryInS=%.0f error=%r", self._name, delay, exc)
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            finally:
                self.connected.clear()
                if not conn.is_closed():
                    try:
                        await asyncio.wait_for(conn.close(), 2)
                    except DATABASE_ERRORS:
                        conn.terminate()
