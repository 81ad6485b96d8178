"""The fleet walker against hand-written fakes of its queries, a fake clock and a fake sleep.

Ports upstream's 17 warm tests (upstream-reference.md §11.1) to the new ``Walker`` (counters,
release fetches, Sentry, budgets, the live-DJ pause, log lines), and covers what upstream lacks:
retries through the answer store, database outages, changed rows and the ``run()`` loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from backend.config import AppConfig
from backend.db.answers import RetrySchedule
from backend.errors import LmlTimeoutError
from backend.models import TrackBody
from backend.services.release_tracklists import ReleaseFetch, ReleaseOutcome
from backend.services.rotation_resolver import Outcome, PickerSource, Resolution
from backend.warm.walk import (
    SUBSYSTEM,
    WalkDeps,
    Walker,
    WalkerStatus,
    WarmCounters,
    WarmSettings,
    capture_to_sentry,
)

START = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
INPUTS = "9f1c0e"  # an inputs fingerprint
INLINE = TrackBody.of_json('[{"position":"1","title":"Song","duration":null,"artists":["A"]}]')
SETTLE_S = 5.0  # only bounds a broken test; passing tests never wait on it
OUTCOME_COUNTERS = ("preResolved", "lmlPositive", "lmlNegative", "lmlErrors", "stampSkipped", "errors")
LOGGER = "backend.warm.walk"


def resolved(
    outcome: Outcome, release_id: int | None = None, *, inline: TrackBody | None = None, inputs: str = INPUTS
) -> Resolution:
    """A resolver answer; a source only when there is a release id or inline tracks."""
    source = PickerSource(release_id, inline) if release_id is not None or inline is not None else None
    return Resolution(outcome, source, inputs=inputs)


def lml_error(inputs: str = INPUTS) -> Resolution:
    return Resolution(Outcome.LML_ERROR, None, "LML request timed out", inputs)


def release(outcome: ReleaseOutcome = ReleaseOutcome.FETCHED) -> ReleaseFetch:
    positive = outcome in (ReleaseOutcome.FETCHED, ReleaseOutcome.CACHE_HIT, ReleaseOutcome.COALESCED)
    return ReleaseFetch(outcome, INLINE if positive else None)


Scripted = Any  # an answer, an exception to raise, or a list of those taken one per call


def _next(script: dict[int, Scripted], key: int, default: Scripted) -> Any:
    answer = script.get(key, default)
    if isinstance(answer, list):
        answer = answer.pop(0) if len(answer) > 1 else answer[0]
    if isinstance(answer, BaseException):
        raise answer
    return answer


class FakeClock:
    """Monotonic and wall time that move only when a fake row costs time or the walker sleeps.

    With ``park`` every sleep is held until :meth:`release` (or cancelled, as the walker's idle
    wait is when it is woken), so tests can drive ``run()`` step by step without real time.
    """

    def __init__(self, *, park: bool = False) -> None:
        self.now_s = 0.0
        self.sleeps: list[float] = []
        self._park = park
        self._slept = asyncio.Event()
        self._gate: asyncio.Future[None] | None = None

    def monotonic(self) -> float:
        return self.now_s

    def wall(self) -> dt.datetime:
        return START + dt.timedelta(seconds=self.now_s)

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._park:
            self._gate = asyncio.get_running_loop().create_future()
            self._slept.set()
            await self._gate
        self.now_s += seconds

    async def parked(self, count: int) -> None:
        """Return once the walker sits in its ``count``-th sleep."""

        async def until() -> None:
            while len(self.sleeps) < count:
                self._slept.clear()
                await self._slept.wait()

        await asyncio.wait_for(until(), SETTLE_S)

    def release(self) -> None:
        """End the held sleep: its time passes."""
        assert self._gate is not None and not self._gate.done()
        self._gate.set_result(None)


@dataclass(frozen=True)
class DueQuery:
    refresh_before: dt.datetime
    only: list[int] | None
    retries_only: bool


@dataclass
class FakeRows:
    """``WalkRows``: rows due in a pass, rows due for a retry, changed rows that need work, the live-DJ probe."""

    due: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    stale: set[int] = field(default_factory=set)
    probe: list[bool | Exception] = field(default_factory=list)
    down: list[Exception] = field(default_factory=list)  # raised by the next due_rows calls, in order
    queries: list[DueQuery] = field(default_factory=list)
    probe_calls: list[int] = field(default_factory=list)

    async def due_rows(
        self, *, refresh_before: dt.datetime, only: list[int] | None = None, retries_only: bool = False
    ) -> list[int]:
        self.queries.append(DueQuery(refresh_before, None if only is None else list(only), retries_only))
        if self.down:
            raise self.down.pop(0)
        if only is not None:
            return [rid for rid in only if rid in self.stale]
        return list(self.retrying if retries_only else self.due)

    async def live_activity(self, lookback_s: int) -> bool:
        self.probe_calls.append(lookback_s)
        answer = self.probe.pop(0) if self.probe else False
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass(frozen=True)
class RowRetry:
    rotation_id: int
    inputs: str
    first_s: float
    max_s: float


@dataclass(frozen=True)
class ReleaseRetry:
    release_id: int
    first_s: float
    max_s: float


class SpinError(AssertionError):
    """The walker read the retry schedule far more often than a test allows."""


@dataclass
class FakeAnswers:
    """``WalkAnswers``: retry schedules are recorded; due releases and the schedule are scripted."""

    due: list[int] = field(default_factory=list)  # releases due in a pass
    retrying: list[int] = field(default_factory=list)  # releases due for a retry
    schedules: list[RetrySchedule] = field(default_factory=list)  # one per read, then ``schedule``
    schedule: RetrySchedule = field(default_factory=lambda: RetrySchedule(0, None))
    schedule_read_limit: int | None = None
    retry_down: list[Exception] = field(default_factory=list)  # raised by the next save_row_retry calls
    row_retries: list[RowRetry] = field(default_factory=list)
    release_retries: list[ReleaseRetry] = field(default_factory=list)
    release_queries: list[bool] = field(default_factory=list)  # retries_only of each due_releases call
    purge_down: list[Exception] = field(default_factory=list)  # raised by the next purges
    purged: tuple[int, int] = (0, 0)  # rows and releases each purge deletes
    schedule_reads: int = 0
    purges: int = 0

    async def save_row_retry(self, rotation_id: int, inputs: str, *, first_s: float, max_s: float) -> float | None:
        if self.retry_down:
            raise self.retry_down.pop(0)
        self.row_retries.append(RowRetry(rotation_id, inputs, first_s, max_s))
        return first_s

    async def save_release_retry(self, release_id: int, *, first_s: float, max_s: float) -> None:
        self.release_retries.append(ReleaseRetry(release_id, first_s, max_s))

    async def due_releases(self, refresh_before: dt.datetime, *, retries_only: bool = False) -> list[int]:
        self.release_queries.append(retries_only)
        return list(self.retrying if retries_only else self.due)

    async def retry_schedule(self) -> RetrySchedule:
        self.schedule_reads += 1
        if self.schedule_read_limit is not None and self.schedule_reads > self.schedule_read_limit:
            raise SpinError(f"retry schedule read {self.schedule_reads} times")
        return self.schedules.pop(0) if self.schedules else self.schedule

    async def purge(self) -> tuple[int, int]:
        self.purges += 1
        if self.purge_down:
            raise self.purge_down.pop(0)
        return self.purged


@dataclass
class FakeResolver:
    """``WalkDeps.resolve``: scripted resolutions per row; each call may cost (fake) time."""

    clock: FakeClock
    answers: dict[int, Scripted] = field(default_factory=dict)
    cost_s: dict[int, float] = field(default_factory=dict)
    default: Resolution = field(default_factory=lambda: resolved(Outcome.NO_TEXT))
    on_call: Callable[[int], None] | None = None
    block_on: int | None = None  # this row never finishes resolving
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[int] = field(default_factory=list)
    fresh: list[bool] = field(default_factory=list)

    async def __call__(self, rotation_id: int, fresh: bool) -> Resolution:
        self.calls.append(rotation_id)
        self.fresh.append(fresh)
        if self.on_call is not None:
            self.on_call(rotation_id)
        if rotation_id == self.block_on:
            self.entered.set()
            await asyncio.Event().wait()
        self.clock.advance(self.cost_s.get(rotation_id, 0.0))
        answer: Resolution = _next(self.answers, rotation_id, self.default)
        return answer


@dataclass(frozen=True)
class FetchCall:
    release_id: int
    fresh: bool


@dataclass
class FakeReleases:
    """``WalkDeps.fetch_release``: scripted fetch outcomes per release id."""

    answers: dict[int, Scripted] = field(default_factory=dict)
    calls: list[FetchCall] = field(default_factory=list)

    async def __call__(self, release_id: int, fresh: bool) -> ReleaseFetch:
        self.calls.append(FetchCall(release_id, fresh))
        answer: ReleaseFetch = _next(self.answers, release_id, release())
        return answer

    @property
    def ids(self) -> list[int]:
        return [call.release_id for call in self.calls]


@dataclass(frozen=True)
class Captured:
    error: BaseException
    tags: dict[str, str]
    extra: dict[str, Any]


@dataclass
class World:
    """A walker and every fake behind it."""

    clock: FakeClock
    rows: FakeRows
    answers: FakeAnswers
    resolver: FakeResolver
    releases: FakeReleases
    walker: Walker
    captured: list[Captured]
    statuses: list[str]
    pings: list[float]


def make_settings(**overrides: Any) -> WarmSettings:
    """The production defaults, with LML configured and the live-DJ probe off unless a test turns it on."""
    base = WarmSettings.from_config(AppConfig(lml_url="http://lml.invalid"))
    return dataclasses.replace(base, **{"lookback_s": 0, **overrides})


def make_world(
    *,
    rows: FakeRows | None = None,
    answers: FakeAnswers | None = None,
    resolutions: dict[int, Scripted] | None = None,
    releases: dict[int, Scripted] | None = None,
    prefetch: Callable[[list[int]], Awaitable[None]] | None = None,
    capture: Callable[[BaseException, dict[str, str], dict[str, Any]], None] | None = None,
    park: bool = False,
    name: str = "w1",
    **settings: Any,
) -> World:
    clock = FakeClock(park=park)
    rows = rows or FakeRows()
    answers = answers or FakeAnswers()
    resolver = FakeResolver(clock, resolutions or {})
    fetch = FakeReleases(releases or {})
    captured: list[Captured] = []
    statuses: list[str] = []
    pings: list[float] = []

    def record_capture(error: BaseException, tags: dict[str, str], extra: dict[str, Any]) -> None:
        captured.append(Captured(error, tags, extra))

    async def ping() -> None:
        pings.append(clock.now_s)

    def on_status(status: WalkerStatus) -> None:
        if not statuses or statuses[-1] != status.state:
            statuses.append(status.state)

    deps = WalkDeps(
        rows=rows,
        answers=answers,
        resolve=resolver,
        fetch_release=fetch,
        prefetch=prefetch,
        ping=ping,
        clock=clock.monotonic,
        now=clock.wall,
        sleep=clock.sleep,
        capture=capture or record_capture,
    )
    walker = Walker(deps, make_settings(**settings), name=name, on_status=on_status)
    return World(clock, rows, answers, resolver, fetch, walker, captured, statuses, pings)


def outcome_counts(c: WarmCounters) -> dict[str, int]:
    return {name: value for name, value in c.to_json().items() if name in OUTCOME_COUNTERS}


def assert_identities(c: WarmCounters) -> None:
    assert c.rows == c.scanned + c.budgetSkipped
    assert c.scanned == c.preResolved + c.lmlPositive + c.lmlNegative + c.lmlErrors + c.stampSkipped + c.errors


def messages(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    """The walker's log lines of one kind (``done``, ``progress``, ``rewarm``, ...)."""
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and f"] {kind}: " in r.getMessage()]


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
    """Events captured by a real Sentry client (no network) for the duration of the test."""
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


class TestPass:
    async def test_visits_every_due_row_in_the_given_order(self) -> None:
        """Each due row is resolved exactly once, freshly, in the order the query returns."""
        world = make_world(rows=FakeRows(due=[30, 10, 20]))
        c = await world.walker.run_pass()
        assert world.resolver.calls == [30, 10, 20]
        assert world.resolver.fresh == [True, True, True]
        assert (c.rows, c.scanned) == (3, 3)

    async def test_the_pass_asks_for_rows_expiring_within_refresh_ahead(self) -> None:
        """A pass takes rows without a valid answer or with one that expires within refresh_ahead."""
        world = make_world(rows=FakeRows(due=[1]), refresh_ahead_s=600.0)
        world.clock.advance(30.0)
        await world.walker.run_pass()
        assert world.rows.queries == [DueQuery(START + dt.timedelta(seconds=630), None, False)]

    @pytest.mark.parametrize(
        ("answer", "counter"),
        [
            pytest.param(resolved(Outcome.TIER1, 4080), "preResolved", id="tier1"),
            pytest.param(resolved(Outcome.TIER2, 4081), "preResolved", id="tier2"),
            pytest.param(resolved(Outcome.NOT_FOUND), "preResolved", id="not-found"),
            pytest.param(resolved(Outcome.NO_TEXT), "preResolved", id="no-text"),
            pytest.param(resolved(Outcome.LML_UNCONFIGURED), "preResolved", id="lml-unconfigured"),
            pytest.param(resolved(Outcome.CACHE_HIT, inline=INLINE), "preResolved", id="cache-hit"),
            pytest.param(resolved(Outcome.CACHE_NEGATIVE), "preResolved", id="cache-negative"),
            pytest.param(resolved(Outcome.STAMP_SKIP), "stampSkipped", id="stamp-skip"),
            pytest.param(resolved(Outcome.LML_POSITIVE, inline=INLINE), "lmlPositive", id="lml-positive"),
            pytest.param(resolved(Outcome.LML_NEGATIVE), "lmlNegative", id="lml-negative"),
            pytest.param(lml_error(), "lmlErrors", id="lml-error"),
            pytest.param(RuntimeError("bug in the resolver"), "errors", id="resolver-raised"),
        ],
    )
    async def test_each_outcome_lands_in_exactly_one_counter(self, answer: Scripted, counter: str) -> None:
        """A row's outcome is counted in exactly one outcome counter, and only an LML error is retried."""
        world = make_world(rows=FakeRows(due=[7]), resolutions={7: answer})
        c = await world.walker.run_pass()
        expected = dict.fromkeys(OUTCOME_COUNTERS, 0) | {counter: 1}
        assert outcome_counts(c) == expected
        assert [r.rotation_id for r in world.answers.row_retries] == ([7] if counter == "lmlErrors" else [])
        assert_identities(c)

    async def test_counters_of_a_mixed_pass(self) -> None:
        """A pass over every kind of outcome adds up, and the identities hold."""
        world = make_world(
            rows=FakeRows(due=list(range(1, 12))),
            resolutions={
                1: resolved(Outcome.TIER1, 4080),
                2: resolved(Outcome.TIER2, 4081),
                3: resolved(Outcome.LML_POSITIVE, inline=INLINE),
                4: resolved(Outcome.LML_NEGATIVE),
                5: lml_error(),
                6: resolved(Outcome.STAMP_SKIP),
                7: RuntimeError("db exploded"),
                8: resolved(Outcome.NO_TEXT),
                9: resolved(Outcome.NOT_FOUND),
                10: resolved(Outcome.CACHE_HIT, inline=INLINE),
                11: resolved(Outcome.CACHE_NEGATIVE),
            },
        )
        world.resolver.cost_s = dict.fromkeys(range(1, 12), 0.5)
        c = await world.walker.run_pass()
        assert (c.scanned, c.preResolved, c.lmlPositive, c.lmlNegative) == (11, 6, 1, 1)
        assert (c.lmlErrors, c.stampSkipped, c.errors, c.budgetSkipped) == (1, 1, 1, 0)
        assert (c.releaseFetchPositive, c.elapsedMs) == (2, 5_500)
        assert_identities(c)

    async def test_zero_rows_is_a_clean_no_op(self, caplog: pytest.LogCaptureFixture) -> None:
        """No due rows: no resolver calls, every counter zero, still one start and one done line."""
        world = make_world()
        with caplog.at_level(logging.INFO, logger=LOGGER):
            c = await world.walker.run_pass()
        assert world.resolver.calls == [] and world.releases.calls == []
        assert all(value == 0 for name, value in c.to_json().items() if name != "elapsedMs")
        assert messages(caplog, "start") == ["[rotation-tracks-cache-warm] start: worker=w1 rows=0"]
        assert len(messages(caplog, "done")) == 1

    async def test_identities_hold_for_a_mixed_pass_cut_by_the_budget(self) -> None:
        """rows = scanned + budgetSkipped, and each scanned row is in exactly one outcome counter."""
        kinds: list[Scripted] = [
            resolved(Outcome.TIER1, 1),
            resolved(Outcome.LML_POSITIVE, 2),
            resolved(Outcome.LML_NEGATIVE),
            lml_error(),
            resolved(Outcome.STAMP_SKIP),
            ValueError("x"),
            resolved(Outcome.NO_TEXT),
        ]
        world = make_world(rows=FakeRows(due=list(range(70))), resolutions={i: kinds[i % 7] for i in range(70)})
        world.resolver.cost_s = dict.fromkeys(range(70), 40.0)  # the 30-minute budget cuts after 46 rows
        c = await world.walker.run_pass()
        assert (c.rows, c.scanned, c.budgetSkipped) == (70, 46, 24)
        assert_identities(c)

    async def test_a_failing_row_is_captured_and_siblings_still_run(self) -> None:
        """A row whose resolver raises is counted and reported with its id; the other rows still run."""
        error = RuntimeError("resolver bug")
        world = make_world(rows=FakeRows(due=[10, 20, 30]), resolutions={20: error})
        c = await world.walker.run_pass()
        assert world.resolver.calls == [10, 20, 30]
        assert (c.scanned, c.errors) == (3, 1)
        assert world.captured == [Captured(error, {"subsystem": SUBSYSTEM}, {"rotation_id": 20})]
        assert world.clock.sleeps == []  # a bug is not an outage: no pause

    async def test_lml_errors_are_counted_not_captured(self) -> None:
        """An LML failure counts as lmlErrors and is retried, without a Sentry event."""
        world = make_world(rows=FakeRows(due=[1, 2]), resolutions={1: lml_error(), 2: lml_error()})
        c = await world.walker.run_pass()
        assert (c.lmlErrors, c.errors, c.preResolved) == (2, 0, 0)
        assert world.captured == []


class TestReleaseFetch:
    async def test_release_is_fetched_for_ids_without_inline_tracks(self) -> None:
        """A row resolving to a release id fetches it once (not fresh); a row with inline tracks does not."""
        world = make_world(
            rows=FakeRows(due=[1, 2]),
            resolutions={1: resolved(Outcome.TIER1, 4080), 2: resolved(Outcome.LML_POSITIVE, 9, inline=INLINE)},
        )
        await world.walker.run_pass()
        assert world.releases.calls == [FetchCall(4080, False)]

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param(resolved(Outcome.LML_NEGATIVE), id="nothing-resolved"),
            pytest.param(resolved(Outcome.LML_POSITIVE, None, inline=INLINE), id="musicbrainz-rescue"),
            pytest.param(lml_error(), id="lml-error"),
            pytest.param(RuntimeError("x"), id="resolver-raised"),
        ],
    )
    async def test_no_release_fetch_without_a_release_to_fetch(self, answer: Scripted) -> None:
        """No release id, or inline tracks already, means no release fetch."""
        world = make_world(rows=FakeRows(due=[1]), resolutions={1: answer})
        await world.walker.run_pass()
        assert world.releases.calls == []

    @pytest.mark.parametrize(
        ("outcome", "counter"),
        [
            pytest.param(ReleaseOutcome.FETCHED, "releaseFetchPositive", id="fetched"),
            pytest.param(ReleaseOutcome.NOT_FOUND, "releaseFetchNegative", id="not-found"),
            pytest.param(ReleaseOutcome.CACHE_HIT, "releaseFetchAlreadyWarm", id="cache-hit"),
            pytest.param(ReleaseOutcome.NEGATIVE_HIT, "releaseFetchAlreadyWarm", id="negative-hit"),
            pytest.param(ReleaseOutcome.COALESCED, "releaseFetchAlreadyWarm", id="coalesced"),
        ],
    )
    async def test_release_counters_classify_each_fetch(self, outcome: ReleaseOutcome, counter: str) -> None:
        """Fetched, 404 and already-warm fetches each land in their own counter."""
        world = make_world(
            rows=FakeRows(due=[1]), resolutions={1: resolved(Outcome.TIER1, 4080)}, releases={4080: release(outcome)}
        )
        c = await world.walker.run_pass()
        counters = ("releaseFetchPositive", "releaseFetchNegative", "releaseFetchAlreadyWarm", "releaseFetchErrors")
        assert {name: c.to_json()[name] for name in counters} == dict.fromkeys(counters, 0) | {counter: 1}

    async def test_cross_row_release_hit_counts_as_already_warm(self) -> None:
        """Two rows sharing a release: the first fetch counts positive, the second already warm."""
        world = make_world(
            rows=FakeRows(due=[1, 2]),
            resolutions={1: resolved(Outcome.LML_POSITIVE, 4080), 2: resolved(Outcome.TIER1, 4080)},
            releases={4080: [release(ReleaseOutcome.FETCHED), release(ReleaseOutcome.CACHE_HIT)]},
        )
        c = await world.walker.run_pass()
        assert (c.releaseFetchPositive, c.releaseFetchAlreadyWarm, c.releaseFetchNegative) == (1, 1, 0)
        assert world.releases.ids == [4080, 4080]

    async def test_release_failure_is_captured_retried_and_the_walk_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed release fetch is reported, scheduled for a retry and logged; the next row still runs."""
        error = LmlTimeoutError()
        world = make_world(
            rows=FakeRows(due=[10, 20]),
            resolutions={10: resolved(Outcome.LML_POSITIVE, 4080), 20: resolved(Outcome.LML_POSITIVE, 4081)},
            releases={4080: error},
            retry_max_s=120.0,
        )
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            c = await world.walker.run_pass()
        assert (c.scanned, c.releaseFetchErrors, c.releaseFetchPositive) == (2, 1, 1)
        assert world.releases.ids == [4080, 4081]
        assert world.captured == [
            Captured(error, {"subsystem": SUBSYSTEM, "phase": "release_fetch"}, {"rotation_id": 10, "release_id": 4080})
        ]
        assert world.answers.release_retries == [ReleaseRetry(4080, 5.0, 120.0)]
        assert messages(caplog, "release_fetch_failed") == [
            "[rotation-tracks-cache-warm] release_fetch_failed: worker=w1 rotation_id=10 release_id=4080"
            " error=LmlTimeoutError('LML request timed out')"
        ]

    async def test_release_failure_reaches_sentry_with_tags_and_extras(
        self, sentry_events: list[dict[str, Any]]
    ) -> None:
        """With the real Sentry reporter, a failed release fetch is one event tagged phase=release_fetch."""
        world = make_world(
            rows=FakeRows(due=[10, 20]),
            resolutions={10: resolved(Outcome.TIER1, 4080), 20: resolved(Outcome.TIER1, 4081)},
            releases={4080: LmlTimeoutError()},
            capture=capture_to_sentry,
        )
        await world.walker.run_pass()
        assert len(sentry_events) == 1
        event = sentry_events[0]
        assert event["tags"] == {"subsystem": SUBSYSTEM, "phase": "release_fetch"}
        assert event["extra"]["rotation_id"] == 10 and event["extra"]["release_id"] == 4080
        assert event["exception"]["values"][0]["value"] == "LML request timed out"

    async def test_due_releases_are_fetched_fresh_after_the_rows(self) -> None:
        """After the rows, the pass refetches stored releases that are missing or expire soon."""
        world = make_world(
            rows=FakeRows(due=[1]),
            answers=FakeAnswers(due=[7001, 7002]),
            resolutions={1: resolved(Outcome.TIER1, 4080)},
            releases={7002: release(ReleaseOutcome.NOT_FOUND)},
        )
        c = await world.walker.run_pass()
        assert world.releases.calls == [FetchCall(4080, False), FetchCall(7001, True), FetchCall(7002, True)]
        assert world.answers.release_queries == [False]
        assert (c.releaseFetchPositive, c.releaseFetchNegative) == (2, 1)

    async def test_a_failed_due_release_is_captured_without_a_row_and_retried(self) -> None:
        """A due release that fails is reported with no rotation id and scheduled for a retry."""
        error = LmlTimeoutError()
        world = make_world(answers=FakeAnswers(due=[7001]), releases={7001: error})
        c = await world.walker.run_pass()
        assert c.releaseFetchErrors == 1
        tags = {"subsystem": SUBSYSTEM, "phase": "release_fetch"}
        assert world.captured == [Captured(error, tags, {"rotation_id": None, "release_id": 7001})]
        assert [r.release_id for r in world.answers.release_retries] == [7001]

    async def test_without_lml_no_release_is_fetched_and_one_line_says_so(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without LML, tier-1/2 rows and due releases are not fetched, and one line explains it."""
        world = make_world(
            rows=FakeRows(due=[1, 2, 3]),
            answers=FakeAnswers(due=[7001]),
            resolutions={1: resolved(Outcome.TIER1, 5), 2: resolved(Outcome.LML_UNCONFIGURED)},
            lml_configured=False,
        )
        with caplog.at_level(logging.INFO, logger=LOGGER):
            c = await world.walker.run_pass()
        assert world.releases.calls == [] and world.answers.release_queries == []
        assert (c.releaseFetchErrors, c.preResolved) == (0, 3)
        assert len(messages(caplog, "lml_unconfigured")) == 1


class TestRetries:
    async def test_lml_error_schedules_a_retry_with_the_resolutions_inputs(self) -> None:
        """An LML error is retried through the answer store, for the inputs it was computed from."""
        world = make_world(rows=FakeRows(due=[7, 8]), resolutions={7: lml_error("fp-7")}, retry_max_s=120.0)
        await world.walker.run_pass()
        assert world.answers.row_retries == [RowRetry(7, "fp-7", 5.0, 120.0)]

    async def test_run_retries_takes_only_due_retry_rows_and_releases(self, caplog: pytest.LogCaptureFixture) -> None:
        """A retry round resolves the rows and fetches the releases whose retry is due, nothing else."""
        world = make_world(
            rows=FakeRows(due=[1, 2, 3], retrying=[4, 5]),
            answers=FakeAnswers(due=[7001], retrying=[8001], schedule=RetrySchedule(1, 5.0)),
            resolutions={4: lml_error("fp-4")},
        )
        world.clock.advance(90.0)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            c = await world.walker.run_retries()
        assert world.resolver.calls == [4, 5]
        assert world.rows.queries == [DueQuery(START + dt.timedelta(seconds=90), None, True)]
        assert world.answers.release_queries == [True]
        assert world.releases.calls == [FetchCall(8001, True)]
        assert world.answers.row_retries == [RowRetry(4, "fp-4", 5.0, 60.0)]
        assert (c.rows, c.scanned, c.lmlErrors, c.preResolved, c.releaseFetchPositive) == (2, 2, 1, 1, 1)
        assert (world.walker.status.retried, world.walker.status.pending_retries) == (2, 1)
        [line] = messages(caplog, "retry")
        assert line.startswith(
            "[rotation-tracks-cache-warm] retry: worker=w1 rows=2 preResolved=1 lmlPositive=0 lmlNegative=0 lmlErrors=1"
        )
        assert line.endswith(" pendingRetries=1")
        assert messages(caplog, "done") == [] and messages(caplog, "progress") == []

    async def test_retry_rounds_log_no_progress_lines(self, caplog: pytest.LogCaptureFixture) -> None:
        """Progress lines belong to passes: a long retry round logs only its summary."""
        world = make_world(rows=FakeRows(retrying=list(range(60))))
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await world.walker.run_retries()
        assert messages(caplog, "progress") == []
        assert len(messages(caplog, "retry")) == 1


class TestDatabaseOutage:
    async def test_an_outage_mid_row_pauses_and_resumes_with_the_same_row(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The row the database failed on is resolved again once it is back, and is counted once, not as an error."""
        world = make_world(
            rows=FakeRows(due=[1, 2, 3]),
            resolutions={
                2: [
                    ConnectionRefusedError(111, "Connection refused"),
                    asyncpg.CannotConnectNowError("the database system is starting up"),
                    resolved(Outcome.TIER1, 4080),
                ]
            },
        )
        with caplog.at_level(logging.INFO, logger=LOGGER):
            c = await world.walker.run_pass()
        assert world.resolver.calls == [1, 2, 2, 2, 3]
        assert (c.scanned, c.preResolved, c.errors) == (3, 3, 0)
        assert (c.dbPauseCount, c.dbPauseMs) == (1, 3_000)
        assert world.clock.sleeps == [1.0, 2.0]
        assert world.pings == [1.0, 3.0]
        assert world.releases.ids == [4080]
        assert world.captured == []
        assert world.statuses == ["passing", "paused_db", "passing"]
        assert len(messages(caplog, "db_unavailable")) == 1
        assert messages(caplog, "db_available") == [
            "[rotation-tracks-cache-warm] db_available: worker=w1 pausedMs=3000; resuming"
        ]

    async def test_backoff_doubles_from_1s_to_30s(self) -> None:
        """While the row query keeps failing the walker waits 1, 2, 4, 8, 16 s, then 30 s, then walks."""
        world = make_world(rows=FakeRows(due=[1], down=[ConnectionRefusedError()] * 8))
        c = await world.walker.run_pass()
        assert world.clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
        assert (world.resolver.calls, c.scanned) == ([1], 1)

    async def test_a_bug_in_the_row_query_is_not_taken_for_an_outage(self) -> None:
        """An error that does not mean "database down" ends the pass at once, without pausing."""
        world = make_world(rows=FakeRows(due=[1], down=[ValueError("bad sql")]))
        with pytest.raises(ValueError, match="bad sql"):
            await world.walker.run_pass()
        assert world.clock.sleeps == [] and world.resolver.calls == []

    async def test_an_outage_during_a_release_fetch_is_a_pause_not_a_failure(self) -> None:
        """A release fetch the database interrupted is fetched again and counted once."""
        world = make_world(
            rows=FakeRows(due=[1]),
            resolutions={1: resolved(Outcome.TIER1, 4080)},
            releases={4080: [OSError("connection reset"), release(ReleaseOutcome.FETCHED)]},
        )
        c = await world.walker.run_pass()
        assert (c.releaseFetchPositive, c.releaseFetchErrors, c.dbPauseCount) == (1, 0, 1)
        assert world.captured == [] and world.answers.release_retries == []

    async def test_an_outage_while_scheduling_a_retry_still_schedules_it(self) -> None:
        """A retry the database could not store at first is stored once it is back."""
        world = make_world(
            rows=FakeRows(due=[1]),
            answers=FakeAnswers(retry_down=[ConnectionResetError()]),
            resolutions={1: lml_error("fp-1")},
        )
        c = await world.walker.run_pass()
        assert [r.rotation_id for r in world.answers.row_retries] == [1]
        assert (c.lmlErrors, c.dbPauseCount, c.errors) == (1, 1, 0)

    async def test_the_summary_line_reports_the_pause(self, caplog: pytest.LogCaptureFixture) -> None:
        """The done line carries the pause count and its duration."""
        world = make_world(rows=FakeRows(due=[1]), resolutions={1: [OSError("down"), resolved(Outcome.NO_TEXT)]})
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await world.walker.run_pass()
        [done] = messages(caplog, "done")
        assert " dbPauseCount=1 dbPauseMs=1000 " in done


class TestChangedRows:
    async def test_changed_rows_are_warmed_before_the_next_pass_row(self, caplog: pytest.LogCaptureFixture) -> None:
        """A row that changes mid-pass is re-warmed before the next pass row, if the database says it needs it."""
        world = make_world(rows=FakeRows(due=[1, 2, 3], stale={9}))
        world.resolver.on_call = lambda rid: world.walker.rows_changed([9, 10]) if rid == 1 else None
        with caplog.at_level(logging.INFO, logger=LOGGER):
            c = await world.walker.run_pass()
        assert world.resolver.calls == [1, 9, 2, 3]
        assert DueQuery(START, [9, 10], False) in world.rows.queries
        assert (c.rows, c.scanned) == (3, 3)  # the re-warm is its own unit, not part of the pass
        assert_identities(c)
        assert world.walker.status.rewarmed == 1
        [line] = messages(caplog, "rewarm")
        assert line.startswith("[rotation-tracks-cache-warm] rewarm: worker=w1 rotation_ids=9 preResolved=1 ")

    async def test_changed_rows_with_a_valid_answer_cost_nothing(self, caplog: pytest.LogCaptureFixture) -> None:
        """A changed row whose stored answer is still valid is not resolved again."""
        world = make_world(rows=FakeRows(due=[1]))
        world.walker.rows_changed([9])
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await world.walker.run_pass()
        assert world.resolver.calls == [1]
        assert DueQuery(START, [9], False) in world.rows.queries
        assert messages(caplog, "rewarm") == []

    async def test_a_changed_row_that_fails_is_retried(self) -> None:
        """An LML error while re-warming a changed row schedules its retry like any other."""
        world = make_world(rows=FakeRows(due=[1], stale={9}), resolutions={9: lml_error("fp-9")})
        world.walker.rows_changed([9])
        await world.walker.run_pass()
        assert world.answers.row_retries == [RowRetry(9, "fp-9", 5.0, 60.0)]


class TestRun:
    async def test_run_passes_at_start_then_waits(self) -> None:
        """run() passes once at once, purges, and then waits (at most a minute before re-reading the schedule)."""
        world = make_world(rows=FakeRows(due=[1, 2]), park=True)
        task = asyncio.ensure_future(world.walker.run())
        try:
            await world.clock.parked(1)
            assert world.resolver.calls == [1, 2]
            assert (world.walker.status.passes, world.walker.status.state) == (1, "waiting")
            assert world.answers.purges == 1
            assert world.clock.sleeps == [60.0]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def test_run_passes_again_after_the_interval(self) -> None:
        """Once pass_interval has gone by, run() passes again."""
        world = make_world(rows=FakeRows(due=[1, 2]), park=True, pass_interval_s=30.0)
        task = asyncio.ensure_future(world.walker.run())
        try:
            await world.clock.parked(1)
            assert world.clock.sleeps == [30.0]
            assert world.walker.status.next_pass_at == "2026-11-29T12:00:30+00:00"
            world.clock.release()
            await world.clock.parked(2)
            assert world.resolver.calls == [1, 2, 1, 2]
            assert world.walker.status.passes == 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @pytest.mark.parametrize(
        ("purge", "line"),
        [
            pytest.param((4, 2), "purged: worker=w1 rows=4 releases=2", id="purged"),
            pytest.param(
                OSError("connection reset"), "purge_failed: worker=w1 error=OSError('connection reset')", id="failed"
            ),
        ],
    )
    async def test_housekeeping_after_a_pass_is_logged_and_never_stops_run(
        self, purge: tuple[int, int] | Exception, line: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """After each pass stale answers are purged; what was purged, or why it failed, is logged and run() goes on."""
        answers = FakeAnswers()
        if isinstance(purge, Exception):
            answers.purge_down.append(purge)
        else:
            answers.purged = purge
        world = make_world(answers=answers, park=True)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            task = asyncio.ensure_future(world.walker.run())
            try:
                await world.clock.parked(1)
                assert world.walker.status.state == "waiting"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert world.answers.purges == 1
        assert [m for m in (r.getMessage() for r in caplog.records) if "] purge" in m] == [
            f"[rotation-tracks-cache-warm] {line}"
        ]

    async def test_request_pass_makes_run_pass_again(self) -> None:
        """A pass request (hints may have been lost) wakes run() for another pass before the interval ends."""
        world = make_world(rows=FakeRows(due=[1]), park=True)
        task = asyncio.ensure_future(world.walker.run())
        try:
            await world.clock.parked(1)
            world.walker.request_pass()
            await world.clock.parked(2)
            assert world.resolver.calls == [1, 1]
            assert world.walker.status.passes == 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def test_run_rewarms_changed_rows_while_waiting(self) -> None:
        """A changed row wakes run(), which re-warms it without a pass and waits again."""
        world = make_world(rows=FakeRows(stale={9}), park=True)
        task = asyncio.ensure_future(world.walker.run())
        try:
            await world.clock.parked(1)
            world.walker.rows_changed([9])
            await world.clock.parked(2)
            assert world.resolver.calls == [9]
            assert (world.walker.status.rewarmed, world.walker.status.passes) == (1, 1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def test_run_retries_as_soon_as_a_retry_is_due(self) -> None:
        """A retry due now is taken right after the pass, then run() waits."""
        world = make_world(
            rows=FakeRows(due=[1], retrying=[4]),
            answers=FakeAnswers(schedules=[RetrySchedule(1, 0.0), RetrySchedule(1, 0.0)]),
            park=True,
        )
        task = asyncio.ensure_future(world.walker.run())
        try:
            await world.clock.parked(1)
            assert world.resolver.calls == [1, 4]
            assert (world.walker.status.retried, world.walker.status.pending_retries) == (1, 0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def test_run_waits_until_the_next_retry_is_due(self) -> None:
        """With a retry due in 12.5 s, run() waits exactly that long and then retries."""
        world = make_world(
            rows=FakeRows(due=[1], retrying=[4]),
            answers=FakeAnswers(schedules=[RetrySchedule(1, 12.5), RetrySchedule(1, 12.5), RetrySchedule(1, 0.0)]),
            park=True,
        )
        task = asyncio.ensure_future(world.walker.run())
        try:
            await world.clock.parked(1)
            assert (world.clock.sleeps, world.resolver.calls) == ([12.5], [1])
            world.clock.release()
            await world.clock.parked(2)
            assert world.resolver.calls == [1, 4]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def test_cancelling_run_mid_row_propagates_and_counts_no_half_row(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Cancellation during a row propagates; the row is neither scanned nor an error, and nothing is reported."""
        world = make_world(rows=FakeRows(due=[1, 2, 3]))
        world.resolver.block_on = 2
        with caplog.at_level(logging.INFO, logger=LOGGER):
            task = asyncio.ensure_future(world.walker.run())
            await asyncio.wait_for(world.resolver.entered.wait(), SETTLE_S)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        c = world.walker.status.counters
        assert (c.scanned, c.errors, c.preResolved) == (1, 0, 1)
        assert c.scanned == sum(outcome_counts(c).values())
        assert world.captured == []
        assert messages(caplog, "done") == []
        assert not [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]

    async def test_cancelling_during_a_database_pause_counts_no_half_row(self) -> None:
        """Cancellation while the walker waits for the database leaves the interrupted row uncounted."""
        world = make_world(rows=FakeRows(due=[1, 2]), resolutions={2: ConnectionRefusedError()}, park=True)
        task = asyncio.ensure_future(world.walker.run_pass())
        await world.clock.parked(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        c = world.walker.status.counters
        assert (c.scanned, c.errors, c.dbPauseCount) == (1, 0, 1)
        assert c.scanned == sum(outcome_counts(c).values())

    async def test_a_due_retry_that_no_query_returns_does_not_spin(self) -> None:
        """When a retry round finds nothing to do, run() waits before reading the schedule again."""
        world = make_world(
            rows=FakeRows(due=[1], retrying=[]),
            answers=FakeAnswers(schedule=RetrySchedule(1, -3.0), schedule_read_limit=50),
            park=True,
        )
        task = asyncio.ensure_future(world.walker.run())
        parked = asyncio.ensure_future(world.clock.parked(1))
        try:
            await asyncio.wait({task, parked}, return_when=asyncio.FIRST_COMPLETED)
            assert parked.done() and not task.done()
        finally:
            for pending in (task, parked):
                pending.cancel()
            await asyncio.gather(task, parked, return_exceptions=True)


class TestBudgetsAndLiveDj:
    async def test_pass_budget_skips_the_remaining_rows(self) -> None:
        """Once the 30-minute pass budget is gone the remaining rows are budgetSkipped, not resolved."""
        world = make_world(rows=FakeRows(due=[1, 2, 3]))
        world.resolver.cost_s = {2: 1_800.001}
        c = await world.walker.run_pass()
        assert world.resolver.calls == [1, 2]
        assert (c.scanned, c.budgetSkipped) == (2, 1)
        assert_identities(c)

    async def test_budget_is_strictly_greater_than(self) -> None:
        """Exactly at the budget the row still runs (upstream's strict >)."""
        world = make_world(rows=FakeRows(due=[1, 2]))
        world.resolver.cost_s = {1: 1_800.0}
        c = await world.walker.run_pass()
        assert c.scanned == 2

    async def test_pause_defers_then_resumes(self, caplog: pytest.LogCaptureFixture) -> None:
        """A live DJ pauses the walk for pause_ms; it resumes when the probe says quiet."""
        world = make_world(rows=FakeRows(due=[1, 2], probe=[True, False, False]), lookback_s=60)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            c = await world.walker.run_pass()
        assert (c.scanned, c.liveActivityPauseCount, c.liveActivityPauseMs) == (2, 1, 30_000)
        assert world.rows.probe_calls == [60, 60, 60]
        assert world.clock.sleeps == [30.0]
        assert messages(caplog, "live_activity_pause") == [
            "[rotation-tracks-cache-warm] live_activity_pause: worker=w1 rotation_id=1 pauseMs=30000 lookback=60s"
        ]

    async def test_lookback_zero_disables_the_probe(self) -> None:
        """A lookback of 0 never probes, so a live DJ never pauses the walk."""
        world = make_world(rows=FakeRows(due=[1], probe=[True, True]), lookback_s=0)
        c = await world.walker.run_pass()
        assert (c.scanned, c.liveActivityPauseCount, world.rows.probe_calls) == (1, 0, [])

    async def test_pass_budget_running_out_mid_pause_skips_the_row(self) -> None:
        """A row whose pause outlasts the pass budget is budgetSkipped and never resolved."""
        world = make_world(rows=FakeRows(due=[1], probe=[True] * 100), lookback_s=60, per_row_pause_budget_ms=10**9)
        c = await world.walker.run_pass()
        assert (c.scanned, c.budgetSkipped, c.liveActivityPauseCount) == (0, 1, 61)
        assert world.resolver.calls == []

    async def test_per_row_pause_cap_skips_the_row_then_moves_on(self) -> None:
        """Ten minutes of pausing on one row skips it; the next row runs when the DJ is quiet."""
        probe: list[bool | Exception] = [*[True] * 22, False]
        world = make_world(rows=FakeRows(due=[10, 20], probe=probe), lookback_s=60)
        c = await world.walker.run_pass()
        assert (c.budgetSkipped, c.scanned) == (1, 1)
        assert world.resolver.calls == [20]
        assert (c.liveActivityPauseCount, c.liveActivityPauseMs) == (21, 630_000)  # 21 x 30 s > 600 s cap
        assert_identities(c)

    async def test_probe_error_is_fail_open_and_logged_once(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failing probe counts as quiet: the walk continues and one warning is logged."""
        world = make_world(
            rows=FakeRows(due=[1, 2, 3], probe=[OSError("db gone"), OSError("db gone"), False]), lookback_s=60
        )
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            c = await world.walker.run_pass()
        assert (c.scanned, c.liveActivityPauseCount, c.dbPauseCount) == (3, 0, 0)
        assert len(messages(caplog, "live_activity_probe_failed")) == 1


class TestPrefetch:
    async def test_next_rows_are_prefetched_in_chunks_and_failures_are_harmless(self) -> None:
        """Every 50 rows the walk reads the next 50 in one call; a failing prefetch changes nothing."""
        chunks: list[list[int]] = []

        async def prefetch(ids: list[int]) -> None:
            chunks.append(ids)
            if len(chunks) == 2:
                raise OSError("db hiccup")

        world = make_world(rows=FakeRows(due=list(range(120))), prefetch=prefetch)
        c = await world.walker.run_pass()
        assert [len(chunk) for chunk in chunks] == [50, 50, 20]
        assert chunks[0][0] == 0 and chunks[2][-1] == 119
        assert (c.scanned, c.errors, c.dbPauseCount) == (120, 0, 0)


class TestLogLines:
    async def test_progress_line_every_50_rows(self, caplog: pytest.LogCaptureFixture) -> None:
        """120 rows give progress lines at 50 and 100, each naming the worker."""
        world = make_world(rows=FakeRows(due=list(range(120))), name="Sanic-Server-1-0")
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await world.walker.run_pass()
        progress = messages(caplog, "progress")
        assert len(progress) == 2
        assert progress[0].startswith(
            "[rotation-tracks-cache-warm] progress: worker=Sanic-Server-1-0 scanned=50/120 preResolved=50 "
        )
        assert "scanned=100/120" in progress[1]

    async def test_start_and_done_lines_carry_every_counter(self, caplog: pytest.LogCaptureFixture) -> None:
        """The start line has the row count; the done line has every counter as key=value and the pending retries."""
        world = make_world(
            rows=FakeRows(due=[1, 2]),
            answers=FakeAnswers(schedule=RetrySchedule(3, 42.0)),
            resolutions={1: resolved(Outcome.LML_POSITIVE, 4080), 2: resolved(Outcome.LML_NEGATIVE)},
        )
        world.resolver.cost_s = {1: 0.25, 2: 0.25}
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await world.walker.run_pass()
        assert messages(caplog, "start") == ["[rotation-tracks-cache-warm] start: worker=w1 rows=2"]
        assert messages(caplog, "done") == [
            "[rotation-tracks-cache-warm] done: worker=w1 scanned=2 preResolved=0 lmlPositive=1 lmlNegative=1"
            " lmlErrors=0 stampSkipped=0 errors=0 releaseFetchPositive=1 releaseFetchNegative=0"
            " releaseFetchAlreadyWarm=0 releaseFetchErrors=0 budgetSkipped=0 liveActivityPauseCount=0"
            " liveActivityPauseMs=0 dbPauseCount=0 dbPauseMs=0 elapsedMs=500 pendingRetries=3"
        ]
        assert world.walker.status.pending_retries == 3


class TestSettings:
    def test_settings_come_from_the_app_config(self) -> None:
        """Every walker setting is read from its AppConfig field."""
        config = AppConfig(
            lml_url=None,
            warm_pass_budget_ms=1_000,
            warm_per_row_pause_budget_ms=2_000,
            warm_live_activity_lookback_s=30,
            warm_live_activity_pause_ms=4_000,
            warm_pass_interval_s=120,
            warm_refresh_ahead_s=600,
            warm_retry_max_s=90,
        )
        assert WarmSettings.from_config(config) == WarmSettings(
            pass_budget_ms=1_000,
            per_row_pause_budget_ms=2_000,
            lookback_s=30,
            pause_ms=4_000,
            lml_configured=False,
            pass_interval_s=120,
            refresh_ahead_s=600,
            retry_max_s=90,
        )
