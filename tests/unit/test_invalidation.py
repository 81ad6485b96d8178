"""The invalidation listener: payload parsing, callbacks, reconnect drops everything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from backend.services.invalidation import CHANNEL, InvalidationListener, parse_payload


class FakeConnection:
    """What the listener uses of an asyncpg connection."""

    def __init__(self) -> None:
        self.listeners: dict[str, Callable[..., None]] = {}
        self._on_close: list[Callable[[Any], None]] = []
        self.closed = False

    def add_termination_listener(self, callback: Callable[[Any], None]) -> None:
        self._on_close.append(callback)

    async def add_listener(self, channel: str, callback: Callable[..., None]) -> None:
        self.listeners[channel] = callback

    def notify(self, payload: str) -> None:
        self.listeners[CHANNEL](self, 1, CHANNEL, payload)

    def drop(self) -> None:
        self.closed = True
        for callback in self._on_close:
            callback(self)

    def is_closed(self) -> bool:
        return self.closed

    async def close(self) -> None:
        self.closed = True

    def terminate(self) -> None:
        self.closed = True


class TestParsePayload:
    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            pytest.param('{"rotation_ids": [1, 2]}', [1, 2], id="ids"),
            pytest.param('{"all": true}', None, id="all"),
            pytest.param("not json", None, id="garbage"),
            pytest.param('{"rotation_ids": ["1"]}', None, id="wrong-type"),
            pytest.param('{"rotation_ids": [true]}', None, id="bool-is-not-an-id"),
            pytest.param("[1, 2]", None, id="wrong-shape"),
        ],
    )
    def test_unreadable_payloads_mean_drop_everything(self, payload: str, expected: list[int] | None) -> None:
        """Anything but a clean id list is treated as "drop all" (safe, never stale)."""
        assert parse_payload(payload) == expected


class TestListener:
    async def test_notifications_call_back_and_a_reconnect_drops_everything(self) -> None:
        """Ids reach on_ids; after the connection is lost and re-made, on_all runs once."""
        connections: list[FakeConnection] = []
        dropped: list[list[int]] = []
        all_calls: list[int] = []

        async def connect(dsn: str) -> FakeConnection:
            connections.append(FakeConnection())
            return connections[-1]

        async def no_sleep(seconds: float) -> None:
            await asyncio.sleep(0)

        listener = InvalidationListener(
            "postgresql://x",
            on_ids=dropped.append,
            on_all=lambda: all_calls.append(1),
            name="w",
            connect=connect,
            sleep=no_sleep,
        )
        task = asyncio.ensure_future(listener.run())
        await asyncio.wait_for(listener.connected.wait(), 1)
        connections[0].notify('{"rotation_ids": [7]}')
        assert dropped == [[7]] and all_calls == []
        connections[0].drop()
        while len(connections) < 2 or not listener.connected.is_set():
            await asyncio.sleep(0)
        assert all_calls == [1]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert connections[1].closed

    async def test_connect_failures_are_retried_with_backoff(self) -> None:
        """A database that is down at boot is retried 1 s, 2 s, 4 s... until it answers."""
        attempts: list[int] = []
        sleeps: list[float] = []

        async def connect(dsn: str) -> FakeConnection:
            attempts.append(1)
            if len(attempts) < 4:
                raise ConnectionRefusedError
            return FakeConnection()

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        listener = InvalidationListener(
            "postgresql://x", on_ids=lambda ids: None, on_all=lambda: None, name="w", connect=connect, sleep=sleep
        )
        task = asyncio.ensure_future(listener.run())
        await asyncio.wait_for(listener.connected.wait(), 1)
        assert sleeps == [1.0, 2.0, 4.0]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
