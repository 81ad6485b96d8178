"""The boot walk against stubbed resolver outcomes, an injected clock and a real Sentry client.

Ports upstream's 17 warm tests (upstream-reference.md §11.1) to explicit outcomes, plus the cases
upstream lacks (fail-open probe, lmlErrors, identities, DB-down retry, cancellation, log format).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from backend.config import AppConfig
from backend.errors import LmlTimeoutError
from backend.models import RotationTrack
from backend.services.release_tracklists import ReleaseFetch, ReleaseOutcome
from backend.services.rotation_resolver import Outcome, PickerSource, Resolution
from backend.services.rotation_tracks_cache_warm import (
    WarmCounters,
    WarmDeps,
    WarmSettings,
    WarmState,
    run_tracked_walk,
    start_rotation_tracks_cache_warm,
    walk_forever,
    warm_rotation_tracks_cache,
    warm_settings_from,
)

INLINE = (RotationTrack("1", "Song", None, ("A",)),)


class CapturingTransport(Transport):
    """A real sentry-sdk transport that keeps events in memory."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event" and item.payload.json is not None:
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events() -> Iterator[list[dict[str, Any]]]:
    """Events captured by a real Sentry client for the duration of the test."""
    transport = CapturingTransport()
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    try:
        yield transport.events
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()


class FakeClock:
    """Monotonic seconds that only move when told to (or when the walk sleeps)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def tier3(release_id: int | None = None, inline: tuple[RotationTrack, ...] | None = None) -> Resolution:
    return Resolution(Outcome.LML_POSITIVE, PickerSource(release_id, inline))


def resolved(outcome: Outcome, release_id: int | None = None) -> Resolution:
    return Resolution(outcome, PickerSource(release_id, None) if release_id else None)


@dataclass
class Script:
    """Stubbed resolver/release/probe outcomes per row, with call logs."""

    rows: list[int]
    outcomes: dict[int, Resolution | Exception] = field(default_factory=dict)
    releases: dict[int, ReleaseFetch | Exception] = field(default_factory=dict)
    probe: list[bool | Exception] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)
    row_cost_s: dict[int, float] = field(default_factory=dict)
    resolved_ids: list[int] = field(default_factory=list)
    fetched_ids: list[int] = field(default_factory=list)
    probe_calls: list[int] = field(default_factory=list)
    list_errors: list[Exception] = field(default_factory=list)

    async def list_rows(self) -> list[int]:
        if self.list_errors:
            raise self.list_errors.pop(0)
        return list(self.rows)

    async def resolve(self, rotation_id: int) -> Resolution:
        self.resolved_ids.append(rotation_id)
        self.clock.now += self.row_cost_s.get(rotation_id, 0.0)
        outcome = self.outcomes.get(rotation_id, resolved(Outcome.NO_TEXT))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def fetch_release(self, release_id: int) -> ReleaseFetch:
        self.fetched_ids.append(release_id)
        answer = self.releases.get(release_id, ReleaseFetch(ReleaseOutcome.FETCHED, ()))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def live_activity(self, lookback_s: int) -> bool:
        self.probe_calls.append(lookback_s)
        answer = self.probe.pop(0) if self.probe else False
        if isinstance(answer, Exception):
            raise answer
        return answer

    def deps(self) -> WarmDeps:
        return WarmDeps(
            list_rows=self.list_rows,
            resolve=self.resolve,
            fetch_release=self.fetch_release,
            live_activity=self.live_activity,
            clock=self.clock,
            sleep=self.clock.sleep,
        )


def settings(**overrides: Any) -> WarmSettings:
    """The production defaults, with the live-DJ probe off unless a test turns it on."""
    base = warm_settings_from(AppConfig(lml_url="http://lml.invalid"))
    return dataclasses.replace(base, **{"lookback_s": 0, **overrides})


def assert_identities(c: WarmCounters) -> None:
    assert c.rows == c.scanned + c.budgetSkipped
    assert c.scanned == (c.preResolved + c.lmlPositive + c.lmlNegative + c.lmlErrors + c.stampSkipped + c.errors)


class TestWalk:
    async def test_visits_every_row_in_the_given_order(self) -> None:
        """Each active row is resolved exactly once, in the repository's order."""
        script = Script(rows=[30, 10, 20])
        counters = await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.resolved_ids == [30, 10, 20]
        assert counters.scanned == 3

    async def test_counters_follow_explicit_outcomes(self) -> None:
        """Every outcome lands in exactly one counter and the identities hold."""
        script = Script(
            rows=list(range(1, 12)),
            outcomes={
                1: resolved(Outcome.TIER1, 4080),
                2: resolved(Outcome.TIER2, 4081),
                3: tier3(inline=INLINE),
                4: resolved(Outcome.LML_NEGATIVE),
                5: resolved(Outcome.LML_ERROR),
                6: resolved(Outcome.STAMP_SKIP),
                7: RuntimeError("db exploded"),
                8: resolved(Outcome.NO_TEXT),
                9: resolved(Outcome.NOT_FOUND),
                10: Resolution(Outcome.CACHE_HIT, PickerSource(None, INLINE)),
                11: resolved(Outcome.CACHE_NEGATIVE),
            },
        )
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert (c.scanned, c.preResolved, c.lmlPositive, c.lmlNegative) == (11, 6, 1, 1)
        assert (c.lmlErrors, c.stampSkipped, c.errors, c.budgetSkipped) == (1, 1, 1, 0)
        assert c.elapsedMs >= 0
        assert_identities(c)

    async def test_release_is_warmed_for_ids_without_inline_tracks(self) -> None:
        """A row resolving to a release id triggers one fetch; an inline row does not."""
        script = Script(rows=[1, 2], outcomes={1: resolved(Outcome.TIER1, 4080), 2: tier3(9, INLINE)})
        await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.fetched_ids == [4080]

    async def test_no_release_fetch_when_nothing_resolves(self) -> None:
        """A null resolution never fetches a release."""
        script = Script(rows=[1], outcomes={1: resolved(Outcome.LML_NEGATIVE)})
        await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.fetched_ids == []

    async def test_no_release_fetch_for_musicbrainz_rescue(self) -> None:
        """A null release id with inline tracks needs no release fetch."""
        script = Script(rows=[1], outcomes={1: tier3(None, INLINE)})
        await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.fetched_ids == []

    async def test_release_counters_classify_each_fetch(self) -> None:
        """Fetched, 404 and already-warm fetches land in their own counters."""
        script = Script(
            rows=[1, 2, 3, 4],
            outcomes={1: tier3(4080), 2: tier3(4081), 3: tier3(None, INLINE), 4: resolved(Outcome.TIER1, 4080)},
            releases={
                4080: ReleaseFetch(ReleaseOutcome.FETCHED, ()),
                4081: ReleaseFetch(ReleaseOutcome.NOT_FOUND, None),
            },
        )
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert (c.releaseFetchPositive, c.releaseFetchNegative, c.releaseFetchErrors) == (2, 1, 0)
        script.releases[4080] = ReleaseFetch(ReleaseOutcome.CACHE_HIT, ())
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert (c.releaseFetchPositive, c.releaseFetchAlreadyWarm) == (0, 2)

    async def test_cross_row_release_hit_counts_as_already_warm(self) -> None:
        """Two rows sharing a release: one fetch counted positive, the other already warm."""
        answers = iter([ReleaseFetch(ReleaseOutcome.FETCHED, ()), ReleaseFetch(ReleaseOutcome.CACHE_HIT, ())])
        script = Script(rows=[1, 2], outcomes={1: tier3(4080), 2: tier3(4080)})

        async def fetch(release_id: int) -> ReleaseFetch:
            return next(answers)

        deps = script.deps()
        deps.fetch_release = fetch
        c = await warm_rotation_tracks_cache(deps, settings())
        assert (c.releaseFetchPositive, c.releaseFetchAlreadyWarm, c.releaseFetchNegative) == (1, 1, 0)

    async def test_release_failure_is_captured_and_the_walk_goes_on(self, sentry_events: list[dict[str, Any]]) -> None:
        """A failed release fetch is one Sentry event tagged phase=release_fetch; the next row runs."""
        script = Script(
            rows=[10, 20],
            outcomes={10: tier3(4080), 20: tier3(4081)},
            releases={4080: LmlTimeoutError()},
        )
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert (c.scanned, c.releaseFetchErrors, c.releaseFetchPositive) == (2, 1, 1)
        assert script.fetched_ids == [4080, 4081]
        assert len(sentry_events) == 1
        event = sentry_events[0]
        assert event["tags"] == {"subsystem": "rotation-tracks-cache-warm", "phase": "release_fetch"}
        assert event["extra"]["rotation_id"] == 10 and event["extra"]["release_id"] == 4080
        assert event["exception"]["values"][0]["value"] == "LML request timed out"

    async def test_failing_row_is_captured_and_siblings_still_run(self, sentry_events: list[dict[str, Any]]) -> None:
        """A row whose resolver throws is counted and reported; the other rows are still visited."""
        script = Script(rows=[10, 20, 30], outcomes={20: ConnectionResetError("db connection lost")})
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.resolved_ids == [10, 20, 30]
        assert (c.scanned, c.errors) == (3, 1)
        assert len(sentry_events) == 1
        assert sentry_events[0]["tags"] == {"subsystem": "rotation-tracks-cache-warm"}
        assert sentry_events[0]["extra"]["rotation_id"] == 20

    async def test_lml_errors_are_counted_not_captured(self, sentry_events: list[dict[str, Any]]) -> None:
        """A tier-3 LML failure stays cold and counts as lmlErrors, without a Sentry event."""
        script = Script(rows=[1, 2], outcomes={1: resolved(Outcome.LML_ERROR), 2: resolved(Outcome.LML_ERROR)})
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert (c.lmlErrors, c.errors, c.preResolved) == (2, 0, 0)
        assert sentry_events == []

    async def test_zero_rows_is_a_clean_no_op(self) -> None:
        """No active rows: no resolver calls, zero counters."""
        script = Script(rows=[])
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.resolved_ids == [] and c == WarmCounters(elapsedMs=c.elapsedMs)

    async def test_identities_hold_for_a_mixed_walk_with_budget_cut(self) -> None:
        """rows = scanned + budgetSkipped and each scanned row is in one outcome counter."""
        kinds: list[Resolution | Exception] = [
            resolved(Outcome.TIER1, 1),
            tier3(2),
            resolved(Outcome.LML_NEGATIVE),
            resolved(Outcome.LML_ERROR),
            resolved(Outcome.STAMP_SKIP),
            ValueError("x"),
            resolved(Outcome.NO_TEXT),
        ]
        script = Script(rows=list(range(70)), outcomes={i: kinds[i % len(kinds)] for i in range(70)})
        script.row_cost_s = dict.fromkeys(range(70), 40.0)  # 40 s per row: the 30-min budget cuts at 45
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert c.budgetSkipped == 70 - c.scanned and c.scanned == 46
        assert_identities(c)


class TestPrefetch:
    async def test_next_rows_are_prefetched_in_chunks_and_failures_are_harmless(self) -> None:
        """Every 50 rows the walk asks for the next 50 in one call; a failing prefetch changes nothing."""
        script = Script(rows=list(range(120)))
        chunks: list[list[int]] = []

        async def prefetch(ids: list[int]) -> None:
            chunks.append(ids)
            if len(chunks) == 2:
                raise OSError("db hiccup")

        deps = script.deps()
        deps.prefetch = prefetch
        c = await warm_rotation_tracks_cache(deps, settings())
        assert [len(chunk) for chunk in chunks] == [50, 50, 20]
        assert chunks[0][0] == 0 and chunks[2][-1] == 119
        assert c.scanned == 120 and c.errors == 0


class TestBudgets:
    async def test_pass_budget_skips_the_remaining_rows(self) -> None:
        """Once the 30-minute budget is gone the remaining rows are budgetSkipped, not resolved."""
        script = Script(rows=[1, 2, 3], row_cost_s={2: 1_800.001})
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.resolved_ids == [1, 2]
        assert (c.scanned, c.budgetSkipped) == (2, 1)

    async def test_budget_is_strictly_greater_than(self) -> None:
        """Exactly at the budget the row still runs (upstream's strict >)."""
        script = Script(rows=[1, 2], row_cost_s={1: 1_800.0})
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert c.scanned == 2

    async def test_pause_defers_then_resumes(self) -> None:
        """A live DJ pauses the walk; it resumes when the probe says quiet."""
        script = Script(rows=[1, 2], probe=[True, False, False])
        c = await warm_rotation_tracks_cache(script.deps(), settings(lookback_s=60))
        assert (c.scanned, c.liveActivityPauseCount, c.liveActivityPauseMs) == (2, 1, 30_000)
        assert script.probe_calls == [60, 60, 60]
        assert script.clock.sleeps == [30.0]

    async def test_lookback_zero_disables_the_probe(self) -> None:
        """WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS=0 never probes."""
        script = Script(rows=[1], probe=[True, True])
        c = await warm_rotation_tracks_cache(script.deps(), settings(lookback_s=0))
        assert (c.scanned, c.liveActivityPauseCount, script.probe_calls) == (1, 0, [])

    async def test_pass_budget_running_out_mid_pause_skips_the_row(self) -> None:
        """A row whose pause outlasts the walk budget is budgetSkipped and never resolved."""
        script = Script(rows=[1], probe=[True] * 100)
        c = await warm_rotation_tracks_cache(script.deps(), settings(lookback_s=60, per_row_pause_budget_ms=10**9))
        assert (c.scanned, c.budgetSkipped) == (0, 1)
        assert script.resolved_ids == []

    async def test_per_row_pause_cap_skips_the_row_then_moves_on(self) -> None:
        """Ten minutes of pausing on one row skips it; the next row runs when the DJ is quiet."""
        script = Script(rows=[10, 20], probe=[True] * 22 + [False])
        c = await warm_rotation_tracks_cache(script.deps(), settings(lookback_s=60))
        assert (c.budgetSkipped, c.scanned) == (1, 1)
        assert script.resolved_ids == [20]
        assert c.liveActivityPauseCount == 21  # 21 x 30 s > 600 s per-row cap

    async def test_probe_error_is_fail_open_and_logged_once(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failing probe counts as quiet: the walk continues and one warning is logged."""
        script = Script(rows=[1, 2, 3], probe=[OSError("db gone"), OSError("db gone"), False])
        with caplog.at_level(logging.WARNING, logger="backend"):
            c = await warm_rotation_tracks_cache(script.deps(), settings(lookback_s=60))
        assert c.scanned == 3 and c.liveActivityPauseCount == 0
        assert len([r for r in caplog.records if "live_activity_probe_failed" in r.getMessage()]) == 1


class TestDatabaseDown:
    async def test_row_query_is_retried_with_backoff_then_succeeds(self) -> None:
        """A database that comes up late still gets walked; waits double from 1 s."""
        script = Script(rows=[1], list_errors=[ConnectionRefusedError(), ConnectionRefusedError(), OSError()])
        c = await warm_rotation_tracks_cache(script.deps(), settings())
        assert c.scanned == 1
        assert script.clock.sleeps == [1.0, 2.0, 4.0]

    async def test_backoff_caps_at_30s_and_gives_up_after_the_window(self) -> None:
        """After WARM_DB_RETRY_MS of failures the error escapes to the task wrapper."""
        script = Script(rows=[1], list_errors=[ConnectionRefusedError()] * 20)
        with pytest.raises(ConnectionRefusedError):
            await warm_rotation_tracks_cache(script.deps(), settings(db_retry_ms=100_000))
        assert script.clock.sleeps[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
        assert sum(script.clock.sleeps) == pytest.approx(100.0)

    async def test_non_connection_errors_are_not_retried(self) -> None:
        """A programming error in the row query fails at once."""
        script = Script(rows=[1], list_errors=[ValueError("bad sql")])
        with pytest.raises(ValueError):
            await warm_rotation_tracks_cache(script.deps(), settings())
        assert script.clock.sleeps == []


class TestLmlUnconfigured:
    async def test_release_fetches_are_skipped_with_one_log_line(self, caplog: pytest.LogCaptureFixture) -> None:
        """Without LML, tier-1/2 rows do not try (and fail) a release fetch."""
        script = Script(rows=[1, 2, 3], outcomes={1: resolved(Outcome.TIER1, 5), 2: resolved(Outcome.LML_UNCONFIGURED)})
        with caplog.at_level(logging.INFO, logger="backend"):
            c = await warm_rotation_tracks_cache(script.deps(), settings(lml_configured=False))
        assert script.fetched_ids == [] and c.releaseFetchErrors == 0 and c.preResolved == 3
        assert len([r for r in caplog.records if "lml_unconfigured" in r.getMessage()]) == 1


class TestCancellation:
    async def test_cancel_mid_row_leaves_no_error_and_no_sentry_event(
        self, sentry_events: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Shutdown during a row propagates cancellation without counting or reporting anything."""
        entered = asyncio.Event()
        script = Script(rows=[1, 2])

        async def slow_resolve(rotation_id: int) -> Resolution:
            entered.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        deps = script.deps()
        deps.resolve = slow_resolve
        state = WarmState()
        with caplog.at_level(logging.INFO, logger="backend"):
            task = asyncio.ensure_future(run_tracked_walk(deps, settings(), state, worker="w"))
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert state.status == "cancelled" and state.counters.errors == 0 and state.counters.scanned == 0
        assert sentry_events == []
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


class TestLogLines:
    async def test_progress_line_every_50_rows(self, caplog: pytest.LogCaptureFixture) -> None:
        """120 rows give progress lines at 50 and 100, each naming the worker."""
        script = Script(rows=list(range(120)))
        with caplog.at_level(logging.INFO, logger="backend"):
            await warm_rotation_tracks_cache(script.deps(), settings(), worker="Sanic-Server-1-0")
        progress = [r.getMessage() for r in caplog.records if " progress: " in r.getMessage()]
        assert len(progress) == 2
        assert progress[0].startswith("[rotation-tracks-cache-warm] progress: worker=Sanic-Server-1-0 scanned=50/120")
        assert "scanned=100/120" in progress[1]

    async def test_start_and_summary_lines_carry_every_counter(self, caplog: pytest.LogCaptureFixture) -> None:
        """The start line has the row count; the done line has every counter as key=value."""
        script = Script(rows=[1, 2], outcomes={1: tier3(4080), 2: resolved(Outcome.LML_NEGATIVE)})
        with caplog.at_level(logging.INFO, logger="backend"):
            await warm_rotation_tracks_cache(script.deps(), settings(), worker="w1")
        messages = [r.getMessage() for r in caplog.records]
        assert "[rotation-tracks-cache-warm] start: worker=w1 rows=2" in messages
        done = [m for m in messages if " done: " in m]
        assert len(done) == 1
        assert re.fullmatch(
            r"\[rotation-tracks-cache-warm\] done: worker=w1 scanned=2 preResolved=0 lmlPositive=1"
            r" lmlNegative=1 lmlErrors=0 stampSkipped=0 errors=0 releaseFetchPositive=1"
            r" releaseFetchNegative=0 releaseFetchAlreadyWarm=0 releaseFetchErrors=0 budgetSkipped=0"
            r" liveActivityPauseCount=0 liveActivityPauseMs=0 elapsedMs=\d+",
            done[0],
        )


@dataclass
class FakeApp:
    """The two things the kickoff touches on a Sanic app."""

    ctx: Any
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    def add_task(self, task_factory: Any, *, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(task_factory())
        self.tasks[name] = task
        return task


class TestWalkForever:
    async def test_refreshes_after_each_walk_and_backs_off_after_failures(self) -> None:
        """Walk, wait the refresh interval, walk again; failures retry at 30 s doubling."""
        results: list[WarmCounters | None] = [None, None, WarmCounters(), WarmCounters()]
        sleeps: list[float] = []

        async def run_once() -> WarmCounters | None:
            if not results:
                raise asyncio.CancelledError
            return results.pop(0)

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        done: list[WarmCounters] = []
        with pytest.raises(asyncio.CancelledError):
            await walk_forever(run_once, refresh_s=72_000, on_done=done.append, sleep=sleep)
        assert sleeps == [30.0, 60.0, 72_000, 72_000]
        assert len(done) == 2


class TestKickoff:
    async def test_returns_at_once_and_a_failed_walk_is_captured_not_raised(
        self, sentry_events: list[dict[str, Any]]
    ) -> None:
        """The kickoff returns synchronously; a row query that keeps failing is one Sentry event."""

        class Rows:
            async def active_ids_in_walk_order(self) -> list[int]:
                raise ValueError("db down")

            async def live_activity(self, lookback_s: int) -> bool:
                return False

        class Resolver:
            async def prefetch(self, ids: list[int]) -> None:
                return None

        class Ctx:
            rows = Rows()
            resolver = Resolver()
            releases = None
            worker = "w"
            warm_state = WarmState()

            class settings:  # noqa: N801 - mimics AppConfig attribute access
                warm_pass_budget_ms = 1_800_000
                warm_per_row_pause_budget_ms = 600_000
                warm_live_activity_lookback_s = 0
                warm_live_activity_pause_ms = 0
                warm_db_retry_ms = 0
                warm_refresh_interval_s = 72_000
                lml_configured = True

        app = FakeApp(ctx=Ctx())
        assert start_rotation_tracks_cache_warm(app) is None
        assert Ctx.warm_state.status == "idle"  # nothing ran synchronously
        task = app.tasks["rotation-tracks-cache-warm"]
        for _ in range(100):
            if Ctx.warm_state.status == "failed":
                break
            await asyncio.sleep(0)
        assert Ctx.warm_state.status == "failed" and "db down" in (Ctx.warm_state.error or "")
        assert not task.done()  # it waits to retry the failed walk
        task.cancel()
        await task  # ends quietly on cancellation
        assert task.done() and not task.cancelled()
        assert len(sentry_events) == 1
        assert sentry_events[0]["tags"] == {"subsystem": "rotation-tracks-cache-warm"}
        assert sentry_events[0]["exception"]["values"][0]["value"] == "db down"
