"""Notification parsing (station.md §1 shapes) and the LISTEN connection, against a fake asyncpg connection."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from backend.db.schemas import Schemas
from backend.warm.hints import NOTHING, UNREADABLE, Hint, HintListener, parse

SCHEMAS = Schemas()  # station wxyc_schema, service rotation_picker
CUSTOM = Schemas(station="station_x", service="picker_y")
DSN = "postgresql://picker@db.invalid/station"
SETTLE_S = 5.0  # only bounds a broken test; passing tests never wait on it


def cdc(action: str, data: object, *, table: str = "rotation", schema: str = "wxyc_schema") -> str:
    """A ``cdc`` payload as ``public.cdc_notify()`` sends it."""
    return json.dumps({"table": table, "schema": schema, "action": action, "data": data, "timestamp": 1764417600000})


def oversized(primary_key: object, *, table: str = "rotation", schema: str = "wxyc_schema") -> str:
    """A ``cdc_oversized`` payload: the row's primary key only."""
    return json.dumps(
        {
            "table": table,
            "schema": schema,
            "action": "UPDATE",
            "primary_key": primary_key,
            "payload_bytes": 9120,
            "timestamp": 1764417600000,
            "reason": "payload_too_large",
        }
    )


def identity_hint(*library_ids: int | None) -> str:
    """A payload of the service's own ``library_identity`` trigger (new id, old id; NULL on insert/delete)."""
    return json.dumps({"table": "library_identity", "library_ids": list(library_ids)})


def rotation_row(rotation_id: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": rotation_id,
        "album_id": 4242,
        "rotation_bin": "H",
        "artist_name": "Autechre",
        "album_title": "Confield",
        "discogs_release_id": None,
        "kill_date": None,
    }
    row.update(overrides)
    return row


class TestParse:
    @pytest.mark.parametrize(
        ("channel", "payload", "expected"),
        [
            pytest.param("cdc", cdc("INSERT", rotation_row(12)), Hint(rotation_ids=(12,)), id="cdc-insert"),
            pytest.param(
                "cdc", cdc("UPDATE", rotation_row(12, album_title="LP5")), Hint(rotation_ids=(12,)), id="cdc-update"
            ),
            pytest.param("cdc", cdc("DELETE", rotation_row(12)), Hint(rotation_ids=(12,)), id="cdc-delete-old-row"),
            pytest.param(
                "cdc",
                json.dumps({"table": "rotation", "action": "UPDATE", "data": rotation_row(3)}),
                Hint(rotation_ids=(3,)),
                id="cdc-without-schema-is-the-station",
            ),
            pytest.param("cdc_oversized", oversized("12"), Hint(rotation_ids=(12,)), id="oversized-string-key"),
            pytest.param("cdc_oversized", oversized(12), Hint(rotation_ids=(12,)), id="oversized-int-key"),
            pytest.param("rotation_picker_hints", identity_hint(5, None), Hint(library_ids=(5,)), id="identity-insert"),
            pytest.param("rotation_picker_hints", identity_hint(None, 5), Hint(library_ids=(5,)), id="identity-delete"),
            pytest.param(
                "rotation_picker_hints", identity_hint(6, 7), Hint(library_ids=(6, 7)), id="identity-relinked"
            ),
            pytest.param("rotation_picker_hints", "{}", Hint(), id="identity-without-ids"),
            pytest.param("rotation_picker_answers", "row_answer", Hint(answers=True), id="answers-rows"),
            pytest.param("rotation_picker_answers", "release_answer", Hint(answers=True), id="answers-releases"),
        ],
    )
    def test_readable_notifications(self, channel: str, payload: str, expected: Hint) -> None:
        """Each channel's payload says which rows, library rows or answers changed."""
        assert parse(channel, payload, SCHEMAS) == expected

    @pytest.mark.parametrize(
        ("channel", "payload"),
        [
            pytest.param("cdc", cdc("UPDATE", {"id": 1}, table="library"), id="cdc-other-table"),
            pytest.param("cdc", cdc("UPDATE", {"id": 1}, table="flowsheet"), id="cdc-flowsheet"),
            pytest.param("cdc", cdc("UPDATE", rotation_row(1), schema="other_station"), id="cdc-other-schema"),
            pytest.param("cdc_oversized", oversized("1", table="artists"), id="oversized-other-table"),
            pytest.param("cdc_oversized", oversized("1", schema="other_station"), id="oversized-other-schema"),
        ],
    )
    def test_irrelevant_changes_say_nothing(self, channel: str, payload: str) -> None:
        """A change no picker answer depends on is no hint at all."""
        assert parse(channel, payload, SCHEMAS) is NOTHING

    @pytest.mark.parametrize(
        ("channel", "payload"),
        [
            pytest.param("cdc", "not json", id="cdc-garbage"),
            pytest.param("cdc", "[1, 2]", id="cdc-array"),
            pytest.param("cdc", "12", id="cdc-number"),
            pytest.param("cdc", cdc("UPDATE", None), id="cdc-row-missing"),
            pytest.param("cdc", cdc("UPDATE", [12]), id="cdc-row-not-an-object"),
            pytest.param("cdc_oversized", "{", id="oversized-garbage"),
            pytest.param("cdc_oversized", oversized(None), id="oversized-null-key"),
            pytest.param("cdc_oversized", oversized("twelve"), id="oversized-non-numeric-key"),
            pytest.param("rotation_picker_hints", "null", id="identity-null"),
            pytest.param("rotation_picker_hints", json.dumps({"library_ids": 5}), id="identity-ids-not-a-list"),
        ],
    )
    def test_unreadable_payloads(self, channel: str, payload: str) -> None:
        """A payload that cannot be read means "re-check everything", never "nothing changed"."""
        assert parse(channel, payload, SCHEMAS) == UNREADABLE

    def test_identity_hint_skips_nulls_and_non_ids(self) -> None:
        """NULL, boolean and non-numeric library ids are skipped; numeric strings count."""
        payload = json.dumps({"library_ids": [None, True, "x", "8", 9]})
        assert parse("rotation_picker_hints", payload, SCHEMAS) == Hint(library_ids=(8, 9))

    @pytest.mark.parametrize(
        ("channel", "payload", "expected"),
        [
            pytest.param("cdc", cdc("UPDATE", rotation_row(4), schema="station_x"), Hint(rotation_ids=(4,)), id="cdc"),
            pytest.param("picker_y_hints", identity_hint(8, 8), Hint(library_ids=(8, 8)), id="hints"),
            pytest.param("picker_y_answers", "row_answer", Hint(answers=True), id="answers"),
        ],
    )
    def test_configured_schemas_name_the_channels(self, channel: str, payload: str, expected: Hint) -> None:
        """The station schema and the service's channels follow the configured schema names."""
        assert parse(channel, payload, CUSTOM) == expected

    def test_default_station_schema_is_foreign_under_a_configured_one(self) -> None:
        """A rotation change in another station schema is ignored."""
        assert parse("cdc", cdc("UPDATE", rotation_row(4)), CUSTOM) is NOTHING


class FakeConnection:
    """The part of an asyncpg connection the listener uses; ``notify`` and ``drop`` play the server."""

    def __init__(self, *, listen_error: Exception | None = None, close_error: Exception | None = None) -> None:
        self.listeners: dict[str, Callable[[Any, int, str, str], None]] = {}
        self.termination_listeners: list[Callable[[Any], None]] = []
        self.listen_error = listen_error
        self.close_error = close_error
        self.closed = False
        self.close_calls = 0
        self.terminated = False

    def add_termination_listener(self, callback: Callable[[Any], None]) -> None:
        self.termination_listeners.append(callback)

    async def add_listener(self, channel: str, callback: Callable[[Any, int, str, str], None]) -> None:
        if self.listen_error is not None:
            raise self.listen_error
        self.listeners[channel] = callback

    async def fetchval(self, query: str) -> int:
        return 1

    async def close(self) -> None:
        self.close_calls += 1
        if self.close_error is not None:
            raise self.close_error
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.terminated = True
        self.closed = True

    def notify(self, channel: str, payload: str) -> None:
        """Deliver a notification, as asyncpg does, to the callback registered for ``channel`` (if any)."""
        callback = self.listeners.get(channel)
        if callback is not None:
            callback(self, 4242, channel, payload)

    def drop(self) -> None:
        """The server closed the connection."""
        self.closed = True
        for callback in self.termination_listeners:
            callback(self)


class FakeConnect:
    """``asyncpg.connect``: hands out the scripted connections or errors, then never returns."""

    def __init__(self, *script: FakeConnection | Exception) -> None:
        self.script = list(script)
        self.dsns: list[str] = []
        self._called = asyncio.Event()

    async def __call__(self, dsn: str) -> FakeConnection:
        self.dsns.append(dsn)
        self._called.set()
        if not self.script:
            await asyncio.Event().wait()  # the database never answers again
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    @property
    def calls(self) -> int:
        return len(self.dsns)

    async def reached(self, calls: int) -> None:
        """Return once ``calls`` connection attempts have been made (the ones before it have been handled)."""

        async def until() -> None:
            while len(self.dsns) < calls:
                self._called.clear()
                await self._called.wait()

        await asyncio.wait_for(until(), SETTLE_S)


class FakeSleep:
    """Records each back-off delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Received:
    """What the listener handed on: hints and "missed" calls."""

    def __init__(self) -> None:
        self.hints: list[Hint] = []
        self.missed = 0

    def on_hint(self, hint: Hint) -> None:
        self.hints.append(hint)

    def on_missed(self) -> None:
        self.missed += 1


def make_listener(
    connect: Callable[[str], Awaitable[Any]],
    received: Received,
    sleep: FakeSleep | None = None,
    *,
    schemas: Schemas = SCHEMAS,
) -> HintListener:
    return HintListener(
        DSN,
        schemas,
        on_hint=received.on_hint,
        on_missed=received.on_missed,
        name="w1",
        connect=connect,
        sleep=sleep or FakeSleep(),
    )


@asynccontextmanager
async def running(listener: HintListener) -> AsyncIterator[asyncio.Task[None]]:
    """Run the listener in a task; cancel it and wait for it on exit."""
    task = asyncio.ensure_future(listener.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class TestHintListener:
    async def test_connects_to_the_dsn_and_listens_on_every_channel(self) -> None:
        """One connection listens on cdc, cdc_oversized and the service's hints and answers channels."""
        conn, received = FakeConnection(), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received, schemas=CUSTOM)
        async with running(listener):
            await connect.reached(1)
            assert listener.connected.is_set()
        assert connect.dsns == [DSN]
        assert set(conn.listeners) == {"cdc", "cdc_oversized", "cdc_error", "picker_y_hints", "picker_y_answers"}

    async def test_notifications_reach_on_hint(self) -> None:
        """Every relevant notification is parsed and handed to on_hint, in order."""
        conn, received = FakeConnection(), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(1)
            conn.notify("cdc", cdc("UPDATE", rotation_row(5)))
            conn.notify("cdc_oversized", oversized("6"))
            conn.notify("rotation_picker_hints", identity_hint(7, None))
            conn.notify("rotation_picker_answers", "row_answer")
        assert received.hints == [
            Hint(rotation_ids=(5,)),
            Hint(rotation_ids=(6,)),
            Hint(library_ids=(7,)),
            Hint(answers=True),
        ]
        assert listener.notifications == 4

    async def test_irrelevant_notifications_are_counted_not_passed_on(self) -> None:
        """A change of another table reaches nobody, though it counts as a notification."""
        conn, received = FakeConnection(), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(1)
            conn.notify("cdc", cdc("UPDATE", {"id": 1}, table="library"))
        assert received.hints == []
        assert listener.notifications == 1

    async def test_unreadable_notification_is_passed_on_with_a_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        """An unreadable payload reaches on_hint as unreadable and logs one warning naming the channel."""
        conn, received = FakeConnection(), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received)
        with caplog.at_level(logging.WARNING, logger="backend.warm.hints"):
            async with running(listener):
                await connect.reached(1)
                conn.notify("cdc_oversized", "{")
        assert received.hints == [UNREADABLE]
        warnings = [r.getMessage() for r in caplog.records if r.name == "backend.warm.hints"]
        assert warnings == ["hint unreadable worker=w1 channel=cdc_oversized; re-checking everything"]

    async def test_first_connection_reports_what_happened_before_it_as_missed(self) -> None:
        """The answers were loaded before the listener connected: on_missed runs once, yet it is no reconnect."""
        conn, received = FakeConnection(), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(1)
            assert listener.connected.is_set()
        assert (received.missed, listener.reconnects) == (1, 0)

    async def test_dropped_connection_reconnects_and_reports_missed_once_per_reconnect(self) -> None:
        """Each lost connection is replaced by a new one, and each connection calls on_missed exactly once."""
        first, second, third = FakeConnection(), FakeConnection(), FakeConnection()
        connect, received = FakeConnect(first, second, third), Received()
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(1)
            first.drop()
            await connect.reached(2)
            assert (received.missed, listener.reconnects) == (2, 1)
            second.notify("cdc", cdc("INSERT", rotation_row(9)))
            second.drop()
            await connect.reached(3)
            assert (received.missed, listener.reconnects) == (3, 2)
            assert listener.connected.is_set()
        assert received.hints == [Hint(rotation_ids=(9,))]

    async def test_notifications_of_a_dropped_connection_are_ignored(self) -> None:
        """After a reconnect only the new connection's notifications are delivered (the old one is gone)."""
        first, second = FakeConnection(), FakeConnection()
        connect, received = FakeConnect(first, second), Received()
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(1)
            first.drop()
            await connect.reached(2)
            second.notify("cdc", cdc("UPDATE", rotation_row(2)))
        assert received.hints == [Hint(rotation_ids=(2,))]

    async def test_connect_failures_back_off_doubling_to_30s(self) -> None:
        """Failed connects wait 1, 2, 4, 8, 16 s and then 30 s each; the first success is no reconnect."""
        conn, received, sleep = FakeConnection(), Received(), FakeSleep()
        failures: list[Exception] = [
            ConnectionRefusedError(111, "Connection refused"),
            OSError("Network is unreachable"),
            asyncio.TimeoutError(),
            asyncpg.CannotConnectNowError("the database system is starting up"),
            asyncpg.TooManyConnectionsError("sorry, too many clients already"),
            asyncpg.InterfaceError("connection was closed in the middle of operation"),
            ConnectionResetError(),
            OSError("No route to host"),
        ]
        connect = FakeConnect(*failures, conn)
        listener = make_listener(connect, received, sleep)
        async with running(listener):
            await connect.reached(len(failures) + 1)
            assert listener.connected.is_set()
        assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
        assert (received.missed, listener.reconnects) == (1, 0)

    async def test_backoff_restarts_after_a_successful_connection(self) -> None:
        """A connection that worked resets the back-off: the next failure waits 1 s again."""
        first, second, received, sleep = FakeConnection(), FakeConnection(), Received(), FakeSleep()
        connect = FakeConnect(OSError("down"), OSError("down"), first, OSError("down"), second)
        listener = make_listener(connect, received, sleep)
        async with running(listener):
            await connect.reached(3)
            first.drop()
            await connect.reached(5)
            assert listener.connected.is_set()
        assert sleep.delays == [1.0, 2.0, 1.0]
        assert received.missed == 2  # once per connection

    async def test_connect_failures_are_logged_with_the_next_delay(self, caplog: pytest.LogCaptureFixture) -> None:
        """Each failed connect logs one warning with the worker and the delay before the next attempt."""
        connect, received = FakeConnect(ConnectionRefusedError("refused"), FakeConnection()), Received()
        listener = make_listener(connect, received)
        with caplog.at_level(logging.WARNING, logger="backend.warm.hints"):
            async with running(listener):
                await connect.reached(2)
        messages = [r.getMessage() for r in caplog.records if r.name == "backend.warm.hints"]
        assert messages == ["hint listener cannot connect worker=w1 retryInS=1 error=ConnectionRefusedError('refused')"]

    async def test_a_bad_dsn_is_not_retried(self) -> None:
        """An error that is not about the database being reachable ends run()."""
        received, sleep = Received(), FakeSleep()
        connect = FakeConnect(ValueError("invalid DSN"))
        listener = make_listener(connect, received, sleep)
        with pytest.raises(ValueError, match="invalid DSN"):
            await asyncio.wait_for(listener.run(), SETTLE_S)
        assert sleep.delays == []

    async def test_cancelling_closes_the_open_connection(self) -> None:
        """Cancellation propagates, closes the connection and clears ``connected``."""
        conn, received = FakeConnection(), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received)
        task = asyncio.ensure_future(listener.run())
        await connect.reached(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (conn.close_calls, conn.is_closed(), conn.terminated) == (1, True, False)
        assert not listener.connected.is_set()

    async def test_a_connection_that_will_not_close_is_terminated(self) -> None:
        """When closing fails the connection is terminated instead."""
        conn, received = FakeConnection(close_error=OSError("broken pipe")), Received()
        connect = FakeConnect(conn)
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(1)
        assert (conn.close_calls, conn.terminated) == (1, True)

    async def test_a_failed_listen_closes_the_connection_and_connects_again(self) -> None:
        """A LISTEN that fails drops that connection; the next connection listens normally."""
        broken = FakeConnection(listen_error=asyncpg.InterfaceError("connection is closed"))
        good, received = FakeConnection(), Received()
        connect = FakeConnect(broken, good)
        listener = make_listener(connect, received)
        async with running(listener):
            await connect.reached(2)
            assert listener.connected.is_set()
            good.notify("cdc", cdc("UPDATE", rotation_row(1)))
        assert broken.close_calls == 1
        assert received.hints == [Hint(rotation_ids=(1,))]

    async def test_a_listen_that_keeps_failing_backs_off(self) -> None:
        """A server that accepts connections but refuses LISTEN is retried with the same back-off as connects."""
        standby = asyncpg.FeatureNotSupportedError("cannot execute LISTEN during recovery")
        connect = FakeConnect(*(FakeConnection(listen_error=standby) for _ in range(3)))
        received, sleep = Received(), FakeSleep()
        listener = make_listener(connect, received, sleep)
        async with running(listener):
            await connect.reached(4)
        assert sleep.delays == [1.0, 2.0, 4.0]
