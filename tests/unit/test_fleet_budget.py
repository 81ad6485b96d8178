"""Unit tests for the fleet's LML token bucket in PostgreSQL, against a hand-written fake pool."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar, cast

import asyncpg
import pytest

from backend.clients.fleet_budget import FleetTokens
from backend.db.schemas import Schemas
from backend.errors import LimiterShedError
from tests.unit.fakes import FakeClock, finished

T = TypeVar("T")

QUEUE_WAIT_S = 5.0
LOGGER = "backend.clients.fleet_budget"


class RecordingSleep:
    """A sleep that records the requested time, moves the clock by it and yields once."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        self.clock.now += seconds
        await asyncio.sleep(0)


class FakePool:
    """``fetchval`` answers from a script: a wait in seconds (0 = token taken) or an exception to raise."""

    def __init__(self, clock: FakeClock, *script: float | BaseException, round_trip_s: float = 0.0) -> None:
        self.clock = clock
        self.script = list(script)
        self.round_trip_s = round_trip_s
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    async def fetchval(self, sql: str, *args: object) -> float:
        self.calls.append((sql, args))
        self.clock.now += self.round_trip_s
        answer = self.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class UnansweringPool(FakePool):
    """A database that accepts the query and never answers (a stalled server, or every connection busy)."""

    async def fetchval(self, sql: str, *args: object) -> float:
        self.calls.append((sql, args))
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FakeFallback:
    """The host's token source while PostgreSQL is unreachable: records what it was asked."""

    def __init__(self) -> None:
        self.takes: list[tuple[str, float | None]] = []

    async def take(self, priority: str, deadline: float | None) -> None:
        self.takes.append((priority, deadline))

    def snapshot(self) -> dict[str, object]:
        return {"scope": "host", "tokens": 7}


def make_tokens(
    pool: FakePool, *, fallback: FakeFallback | None = None, reserve: int = 3, schemas: Schemas | None = None
) -> tuple[FleetTokens, RecordingSleep]:
    sleep = RecordingSleep(pool.clock)
    tokens = FleetTokens(
        cast("asyncpg.Pool", pool),
        schemas or Schemas(),
        50,
        reserve=reserve,
        fallback=fallback or FakeFallback(),
        clock=pool.clock,
        sleep=sleep,
    )
    return tokens, sleep


class TestFleetTokens:
    async def test_live_caller_asks_for_a_token_without_keeping_a_reserve(self) -> None:
        """A live take sends the fleet rate and keep=0 to the service schema's take_lml_token."""
        pool = FakePool(FakeClock(), 0.0)
        tokens, sleep = make_tokens(pool, schemas=Schemas(service="picker_svc"))
        await tokens.take("live", pool.clock() + QUEUE_WAIT_S)
        [(sql, args)] = pool.calls
        assert "picker_svc.take_lml_token" in sql
        assert args == (50.0, 0.0)
        assert sleep.requested == []

    async def test_warm_caller_keeps_the_reserve(self) -> None:
        """A warm take asks the database to leave ``reserve`` tokens for live callers."""
        pool = FakePool(FakeClock(), 0.0)
        tokens, _ = make_tokens(pool, reserve=4)
        await tokens.take("warm", None)
        assert pool.calls[0][1] == (50.0, 4.0)

    async def test_waits_as_told_and_asks_again(self) -> None:
        """A positive answer is the time to wait before asking again; 0 means the token was taken."""
        pool = FakePool(FakeClock(), 0.5, 0.25, 0.0)
        tokens, sleep = make_tokens(pool)
        await tokens.take("warm", None)
        assert sleep.requested == [0.5, 0.25]
        assert len(pool.calls) == 3

    async def test_live_caller_is_shed_when_the_token_comes_after_its_deadline(self) -> None:
        """A live caller told to wait past its deadline is shed at once, without sleeping or falling back."""
        fallback = FakeFallback()
        pool = FakePool(FakeClock(), 10.0)
        tokens, sleep = make_tokens(pool, fallback=fallback)
        task = asyncio.ensure_future(tokens.take("live", pool.clock() + QUEUE_WAIT_S))
        with pytest.raises(LimiterShedError) as info:
            await finished(task)
        assert info.value.reason == "shed_rate_limited"
        assert (sleep.requested, fallback.takes) == ([], [])

    async def test_rejects_unknown_priority(self) -> None:
        """Only "live" and "warm" are priorities; nothing is sent."""
        pool = FakePool(FakeClock())
        tokens, _ = make_tokens(pool)
        with pytest.raises(ValueError, match="priority"):
            await tokens.take("urgent", None)
        assert pool.calls == []

    async def test_snapshot_reports_the_mean_round_trip(self) -> None:
        """snapshot() names the fleet scope, the rate, the reserve, the mean round trip and the fallback."""
        pool = FakePool(FakeClock(), 0.0, 0.0, round_trip_s=0.002)
        tokens, _ = make_tokens(pool, reserve=3)
        assert tokens.snapshot()["round_trip_ms"] is None
        await tokens.take("live", None)
        await tokens.take("live", None)
        assert tokens.snapshot() == {
            "scope": "fleet",
            "rate_per_min": 50.0,
            "reserve": 3,
            "round_trip_ms": pytest.approx(2.0),
            "fallback": {"scope": "host", "tokens": 7},
        }


class TestFleetTokensFallback:
    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(ConnectionRefusedError(111, "Connection refused"), id="refused"),
            pytest.param(asyncio.TimeoutError(), id="timeout"),
            pytest.param(asyncpg.PostgresConnectionError("connection lost"), id="connection-lost"),
        ],
    )
    async def test_unreachable_database_falls_back_to_the_host_budget(self, error: Exception) -> None:
        """When PostgreSQL cannot be asked, the token comes from the fallback with the same priority and deadline."""
        fallback = FakeFallback()
        pool = FakePool(FakeClock(), error)
        tokens, _ = make_tokens(pool, fallback=fallback)
        deadline = pool.clock() + QUEUE_WAIT_S
        await tokens.take("live", deadline)
        assert fallback.takes == [("live", deadline)]
        assert tokens.snapshot()["scope"] == "host (fleet budget unreachable)"

    async def test_outage_is_logged_once_and_recovery_once(self, caplog: pytest.LogCaptureFixture) -> None:
        """Consecutive failures log one warning; the first success afterwards logs that the budget is back."""
        refused = ConnectionRefusedError(111, "Connection refused")
        fallback = FakeFallback()
        pool = FakePool(FakeClock(), refused, refused, refused, 0.0, refused)
        tokens, _ = make_tokens(pool, fallback=fallback)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            for _ in range(3):
                await tokens.take("warm", None)
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "using the host budget" in warnings[0].getMessage()
            await tokens.take("warm", None)
            assert tokens.snapshot()["scope"] == "fleet"
            assert "reachable again" in caplog.text
            await tokens.take("warm", None)  # a new outage is reported again
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
        assert len(fallback.takes) == 4

    async def test_failure_while_waiting_falls_back(self) -> None:
        """A database failure between polls hands the rest of the wait to the fallback."""
        fallback = FakeFallback()
        pool = FakePool(FakeClock(), 0.5, ConnectionRefusedError(111, "Connection refused"))
        tokens, sleep = make_tokens(pool, fallback=fallback)
        await tokens.take("warm", None)
        assert sleep.requested == [0.5]
        assert fallback.takes == [("warm", None)]

    async def test_other_errors_are_not_masked(self) -> None:
        """An error that does not mean "database unavailable" propagates instead of falling back."""
        fallback = FakeFallback()
        pool = FakePool(FakeClock(), ValueError("bad SQL result"))
        tokens, _ = make_tokens(pool, fallback=fallback)
        with pytest.raises(ValueError, match="bad SQL result"):
            await tokens.take("live", None)
        assert fallback.takes == []

    async def test_fallback_shed_reaches_the_caller(self) -> None:
        """If the fallback cannot serve the live caller in time either, its shed propagates."""

        class SheddingFallback(FakeFallback):
            async def take(self, priority: str, deadline: float | None) -> None:
                await super().take(priority, deadline)
                raise LimiterShedError("shed_rate_limited")

        fallback = SheddingFallback()
        pool = FakePool(FakeClock(), ConnectionRefusedError(111, "Connection refused"))
        tokens, _ = make_tokens(pool, fallback=fallback)
        with pytest.raises(LimiterShedError, match="shed_rate_limited"):
            await tokens.take("live", pool.clock() + QUEUE_WAIT_S)
        assert len(fallback.takes) == 1

    async def test_a_stalled_database_does_not_hold_a_live_caller_past_its_deadline(self) -> None:
        """A token query that gets no answer is given up at the caller's deadline; the host budget decides.

        The round trip is bounded on the event loop's clock (a real 50 ms here), not the fake one.
        """
        clock = FakeClock()
        fallback = FakeFallback()
        pool = UnansweringPool(clock)
        tokens, _ = make_tokens(pool, fallback=fallback)
        deadline = clock() + 0.05
        await asyncio.wait_for(tokens.take("live", deadline), timeout=10)
        assert fallback.takes == [("live", deadline)]
        assert tokens.snapshot()["scope"] == "host (fleet budget unreachable)"
