"""The answer follower with the real resolver, release service and caches over a fake store and repository."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast
from unittest.mock import Mock

import asyncpg
import pytest

from backend.clients.lml import LmlClient
from backend.config import AppConfig
from backend.db.answers import AnswerStore, Loaded, StoredRelease, StoredRow
from backend.db.rotation import PickerRow, RotationRepository
from backend.models import TrackBody
from backend.services.caches import Caches, ExpiringCache
from backend.services.graph import Services
from backend.services.lookup_coordinator import LookupCoordinator
from backend.services.release_tracklists import ReleaseTracklistService
from backend.services.rotation_resolver import CachedAnswer, Outcome, PickerSource, RotationResolver
from backend.services.rotation_tracks import RotationTracksService
from backend.warm.follower import AnswerFollower
from backend.warm.hints import UNREADABLE, Hint

SETTLE_S = 5.0  # only bounds a broken test; passing tests never wait on it
LOGGER = "backend.warm.follower"
TRACKS = '[{"position":"A1","title":"Pen Expers","duration":"7:12","artists":["Autechre"]}]'


def stored_row(
    rotation_id: int,
    *,
    seq: int,
    outcome: Outcome = Outcome.TIER1,
    release_id: int | None = None,
    tracks: str | None = None,
    inputs: str | None = None,
) -> StoredRow:
    """A persisted row answer (inputs ``fp-<id>`` unless given)."""
    return StoredRow(rotation_id, inputs or f"fp-{rotation_id}", outcome.value, release_id, tracks, 3_600.0, seq)


def stored_release(release_id: int, *, seq: int, tracks: str | None = TRACKS) -> StoredRelease:
    return StoredRelease(release_id, tracks, 86_400.0, seq)


class FakeClock:
    """Monotonic seconds that move only when a test or a fake says so."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Calls:
    """Counts calls so a test can wait for the n-th one instead of sleeping."""

    def __init__(self) -> None:
        self.count = 0
        self._event = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        self._event.set()

    async def reached(self, count: int) -> None:
        async def until() -> None:
            while self.count < count:
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(until(), SETTLE_S)


class Gate:
    """Holds a read in flight until the test opens it."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self._open = asyncio.Event()

    async def hold(self) -> None:
        self.reading.set()
        await self._open.wait()

    async def in_flight(self) -> None:
        await asyncio.wait_for(self.reading.wait(), SETTLE_S)

    def open(self) -> None:
        self._open.set()


@dataclass
class FakeAnswerStore:
    """The answer store: every stored answer with its sequence number; a load returns those after a cursor."""

    rows: list[StoredRow] = field(default_factory=list)
    releases: list[StoredRelease] = field(default_factory=list)
    down: list[Exception] = field(default_factory=list)  # raised by the next loads, in order
    clock: FakeClock | None = None
    read_cost_s: float = 0.0
    gate: Gate | None = None  # the next load reads, then waits here before returning
    loads: list[int] = field(default_factory=list)  # the cursor of each load
    load_calls: Calls = field(default_factory=Calls)

    async def load(self, after_seq: int = 0) -> Loaded:
        self.loads.append(after_seq)
        self.load_calls.hit()
        if self.down:
            raise self.down.pop(0)
        rows = [r for r in self.rows if r.seq > after_seq]
        releases = [r for r in self.releases if r.seq > after_seq]
        last = max([after_seq, *(r.seq for r in self.rows), *(r.seq for r in self.releases)])
        if self.clock is not None:
            self.clock.advance(self.read_cost_s)
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.hold()
        return Loaded(rows, releases, last)

    # The resolver and the release service write through these; the follower never does.
    async def save_row(
        self,
        rotation_id: int,
        *,
        inputs: str,
        outcome: str,
        release_id: int | None,
        tracks: str | None,
        ttl_s: float,
    ) -> int | None:
        raise AssertionError("the follower never stores an answer")

    async def release(self, release_id: int) -> StoredRelease | None:
        raise AssertionError("the follower never reads one release")

    async def save_release(self, release_id: int, tracks: str | None, ttl_s: float) -> int:
        raise AssertionError("the follower never stores a release")


@dataclass
class FakeRepository:
    """The station's rotation rows: their current inputs and the library rows they link to."""

    active: int = 0
    inputs: dict[int, str] = field(default_factory=dict)
    albums: dict[int, list[int]] = field(default_factory=dict)  # library id -> rotation ids
    down: list[Exception] = field(default_factory=list)  # raised by the next current_inputs calls
    gate: Gate | None = None  # the next current_inputs reads, then waits here before returning
    checks: list[list[int]] = field(default_factory=list)  # the ids of each current_inputs call
    album_queries: list[list[int]] = field(default_factory=list)
    check_calls: Calls = field(default_factory=Calls)
    count_down: list[Exception] = field(default_factory=list)

    async def active_count(self) -> int:
        if self.count_down:
            raise self.count_down.pop(0)
        return self.active

    async def current_inputs(self, rotation_ids: list[int]) -> dict[int, str]:
        self.checks.append(list(rotation_ids))
        self.check_calls.hit()
        if self.down:
            raise self.down.pop(0)
        current = {rid: self.inputs[rid] for rid in rotation_ids if rid in self.inputs}
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.hold()
        return current

    async def rows_of_albums(self, library_ids: list[int]) -> list[int]:
        self.album_queries.append(list(library_ids))
        return [rid for lid in library_ids for rid in self.albums.get(lid, [])]

    # The resolver's reads: every row is unknown (only used to put a cold answer in place).
    async def picker_row(self, rotation_id: int) -> PickerRow | None:
        return None

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]:
        return {}

    async def stamp_lookup_attempted(self, rotation_id: int) -> None:
        raise AssertionError("the follower never stamps")

    async def clear_lookup_stamp(self, rotation_id: int) -> None:
        raise AssertionError("the follower never stamps")


def make_caches(clock: FakeClock) -> Caches:
    """Small caches, so growing them is observable."""
    return Caches(
        rotation=ExpiringCache(4, 86_400, clock),
        cold=ExpiringCache(16, 60, clock),
        release_positive=ExpiringCache(4, 86_400, clock),
        release_negative=ExpiringCache(4, 600, clock),
    )


def make_services(rows: FakeRepository, answers: FakeAnswerStore, caches: Caches) -> Services:
    """The real resolver, release service and picker over the fakes; nothing here reaches LML or a pool."""
    lml = Mock(spec_set=LmlClient)
    coordinator = Mock(spec_set=LookupCoordinator)
    resolver = RotationResolver(rows, coordinator, answers, lml_configured=True, caches=caches)
    releases = ReleaseTracklistService(lml, answers, caches=caches)
    return Services(
        settings=AppConfig(),
        pool=Mock(spec_set=asyncpg.Pool),
        caches=caches,
        http=None,
        lml=lml,
        rows=cast(RotationRepository, rows),
        answers=cast(AnswerStore, answers),
        coordinator=coordinator,
        resolver=resolver,
        releases=releases,
        picker=RotationTracksService(resolver, releases),
    )


@dataclass
class World:
    clock: FakeClock
    rows: FakeRepository
    answers: FakeAnswerStore
    caches: Caches
    services: Services
    follower: AnswerFollower
    hinted: list[list[int]]
    missed: list[str]

    @property
    def resolver(self) -> RotationResolver:
        return self.services.resolver

    def cached(self, rotation_id: int) -> CachedAnswer | None:
        return self.services.resolver.cached(rotation_id)

    def store(self, *answers: StoredRow | StoredRelease) -> None:
        """Persist more answers (as the walker would)."""
        for answer in answers:
            if isinstance(answer, StoredRow):
                self.answers.rows.append(answer)
            else:
                self.answers.releases.append(answer)


def make_world(
    rows: Iterable[StoredRow] = (),
    releases: Iterable[StoredRelease] = (),
    *,
    active: int | None = None,
    inputs: dict[int, str] | None = None,
    albums: dict[int, list[int]] | None = None,
) -> World:
    """A follower over a store holding ``rows``/``releases``; current inputs match the stored ones unless given."""
    clock = FakeClock()
    stored = list(rows)
    repo = FakeRepository(
        active=len(stored) if active is None else active,
        inputs={r.rotation_id: r.inputs for r in stored} if inputs is None else dict(inputs),
        albums=albums or {},
    )
    answers = FakeAnswerStore(stored, list(releases), clock=clock)
    caches = make_caches(clock)
    services = make_services(repo, answers, caches)
    follower = AnswerFollower(services, name="w1", started_at=clock(), clock=clock, poll_s=3_600.0)
    hinted: list[list[int]] = []
    missed: list[str] = []
    follower.on_hinted_rows = hinted.append
    follower.on_missed = lambda: missed.append("missed")
    return World(clock, repo, answers, caches, services, follower, hinted, missed)


@asynccontextmanager
async def following(world: World) -> AsyncIterator[None]:
    """Run the follower's loop (it only wakes on hints: the poll interval is an hour); cancel it on exit."""
    task = asyncio.ensure_future(world.follower.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def follower_lines(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and f"] {kind}: " in r.getMessage()]


class TestLoadAll:
    @pytest.mark.parametrize(
        ("before_serving", "flag"),
        [pytest.param(True, "true", id="before-serving"), pytest.param(False, "false", id="in-the-background")],
    )
    async def test_load_all_fills_the_caches(
        self, before_serving: bool, flag: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every stored row and release answer is in memory afterwards, and one worker_warm line says so."""
        world = make_world(
            [
                stored_row(1, seq=1, outcome=Outcome.TIER1, release_id=4080),
                stored_row(2, seq=2, outcome=Outcome.LML_POSITIVE, tracks=TRACKS),
                stored_row(3, seq=3, outcome=Outcome.LML_NEGATIVE),
            ],
            [stored_release(4080, seq=4), stored_release(4090, seq=5, tracks=None)],
        )
        world.clock.advance(1.0)  # the process started a second before it loads
        world.answers.read_cost_s = 2.5
        with caplog.at_level(logging.INFO, logger=LOGGER):
            assert await world.follower.load_all(before_serving=before_serving) is True
        assert world.cached(1) == CachedAnswer(Outcome.TIER1, PickerSource(4080, None), "fp-1")
        assert world.cached(2) == CachedAnswer(
            Outcome.LML_POSITIVE, PickerSource(None, TrackBody.of_json(TRACKS)), "fp-2"
        )
        assert world.cached(3) == CachedAnswer(Outcome.LML_NEGATIVE, None, "fp-3")
        assert world.caches.release_positive.get(4080) == TrackBody.of_json(TRACKS)
        assert 4090 in world.caches.release_negative
        assert follower_lines(caplog, "worker_warm") == [
            "[rotation-tracks-cache-warm] worker_warm: worker=w1 rows=3 releases=2 loadMs=2500.0"
            f" sinceStartMs=3500 beforeServing={flag}"
        ]
        status = world.follower.status()
        assert (status["loaded"], status["loads"], status["rows_loaded"], status["releases_loaded"]) == (
            True,
            1,
            3,
            2,
        )
        assert (status["warm_after_ms"], status["cursor"]) == (3500.0, 5)

    @pytest.mark.parametrize(
        "active",
        [pytest.param(100, id="active-count-larger"), pytest.param(2, id="stored-answers-larger")],
    )
    async def test_load_all_grows_the_caches_to_hold_every_active_row(self, active: int) -> None:
        """Caches sized for 4 rows grow to hold every active row (and every loaded answer), so none is evicted."""
        world = make_world(
            [stored_row(rid, seq=rid) for rid in range(1, 7)],
            [stored_release(5000 + n, seq=10 + n) for n in range(6)],
            active=active,
        )
        await world.follower.load_all()
        assert all(world.cached(rid) is not None for rid in range(1, 7))
        assert all(5000 + n in world.caches.release_positive for n in range(6))
        expected = max(active, 6)
        assert world.caches.rotation.maxsize >= expected
        assert world.caches.release_positive.maxsize >= expected
        assert world.caches.release_negative.maxsize >= expected
        assert world.caches.rotation.evictions == 0

    @pytest.mark.parametrize(
        "broken",
        [pytest.param("load", id="answers-unreadable"), pytest.param("count", id="row-count-unreadable")],
    )
    async def test_an_unreachable_database_leaves_the_worker_cold(
        self, broken: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without the database load_all returns False and says so; nothing is loaded."""
        world = make_world([stored_row(1, seq=1)])
        error = ConnectionRefusedError(111, "Connection refused")
        if broken == "load":
            world.answers.down.append(error)
        else:
            world.rows.count_down.append(error)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert await world.follower.load_all(before_serving=True) is False
        assert world.cached(1) is None
        assert world.follower.status()["loaded"] is False
        assert follower_lines(caplog, "answers_not_loaded") == [
            "[rotation-tracks-cache-warm] answers_not_loaded: worker=w1"
            f" error={error!r}; serving cold until the database is back"
        ]

    async def test_a_row_hinted_during_load_all_is_applied_then_rechecked(self) -> None:
        """A row hinted while the first full read is in flight is applied, then re-checked like any hinted row:
        its answer stays when the change left its inputs alone (the walk's own stamp), and goes otherwise."""
        world = make_world([stored_row(7, seq=1), stored_row(8, seq=2)])
        world.rows.inputs = {7: "fp-7", 8: "fp-8-changed"}
        gate = world.answers.gate = Gate()
        task = asyncio.ensure_future(world.follower.load_all())
        await gate.in_flight()
        world.follower.rows_hinted([7, 8])
        gate.open()
        assert await task is True
        async with following(world):
            await world.rows.check_calls.reached(1)
            await world.answers.load_calls.reached(2)
        assert world.rows.checks == [[7, 8]]
        assert world.cached(7) is not None
        assert world.cached(8) is None


class TestLoadNew:
    async def test_load_new_applies_only_newer_answers(self) -> None:
        """After load_all, a read continues from the last sequence seen and applies only what is newer."""
        world = make_world([stored_row(1, seq=1), stored_row(2, seq=2), stored_row(3, seq=3)])
        await world.follower.load_all()
        world.caches.rotation.delete(2)  # an old answer that is gone from memory stays gone
        world.store(
            stored_row(4, seq=4),
            stored_row(1, seq=5, outcome=Outcome.TIER2, release_id=5555, inputs="fp-1b"),
            stored_release(5555, seq=6),
        )
        assert await world.follower.load_new() == 3
        assert world.answers.loads == [0, 3]
        assert world.cached(1) == CachedAnswer(Outcome.TIER2, PickerSource(5555, None), "fp-1b")
        assert world.cached(4) is not None
        assert world.cached(2) is None
        assert world.caches.release_positive.get(5555) == TrackBody.of_json(TRACKS)
        assert world.follower.status()["cursor"] == 6

    async def test_nothing_new_applies_nothing(self) -> None:
        """A read with nothing newer applies nothing and keeps the cursor."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        assert await world.follower.load_new() == 0
        assert world.follower.status()["cursor"] == 1
        assert world.follower.status()["rows_loaded"] == 1

    async def test_load_new_grows_the_cache_for_new_answers(self) -> None:
        """New answers make the row cache grow instead of evicting answers already loaded."""
        world = make_world([stored_row(rid, seq=rid) for rid in range(1, 5)], active=0)
        await world.follower.load_all()
        world.store(*(stored_row(rid, seq=rid) for rid in range(5, 21)))
        assert await world.follower.load_new() == 16
        assert all(world.cached(rid) is not None for rid in range(1, 21))
        assert world.caches.rotation.evictions == 0

    async def test_a_row_hinted_during_the_read_is_applied_and_rechecked(self) -> None:
        """A row hinted while a read is in flight (the walk stamping the row it just answered) is applied, and
        kept after its re-check: the stamp did not change its inputs. Leaving it out lost it for good."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        world.rows.inputs = {1: "fp-1", 7: "fp-7", 8: "fp-8"}
        world.store(stored_row(7, seq=2), stored_row(8, seq=3))
        gate = world.answers.gate = Gate()
        async with following(world):
            world.follower.answers_written()
            await gate.in_flight()
            world.follower.rows_hinted([7])
            gate.open()
            await world.rows.check_calls.reached(1)
            await world.answers.load_calls.reached(3)
        assert world.rows.checks == [[7]]
        assert world.cached(7) is not None and world.cached(8) is not None
        assert world.follower.status()["cursor"] == 3

    async def test_a_row_whose_library_changes_during_the_read_is_dropped_by_its_recheck(self) -> None:
        """A tier-2 change hinted while a read is in flight: the row read with its old inputs is applied, then
        dropped by the re-check of the library's rows."""
        world = make_world([stored_row(1, seq=1)], albums={77: [7]})
        await world.follower.load_all()
        world.rows.inputs = {1: "fp-1", 7: "fp-7-relinked"}
        world.store(stored_row(7, seq=2))
        gate = world.answers.gate = Gate()
        async with following(world):
            world.follower.answers_written()
            await gate.in_flight()
            world.follower.libraries_hinted([77])
            gate.open()
            await world.rows.check_calls.reached(1)
            await world.answers.load_calls.reached(3)
        assert world.rows.checks == [[7]]
        assert world.cached(7) is None


class TestHints:
    @pytest.mark.parametrize(
        ("current", "kept"),
        [
            pytest.param({1: "fp-1"}, True, id="inputs-unchanged"),
            pytest.param({1: "fp-1-relinked"}, False, id="inputs-changed"),
            pytest.param({}, False, id="row-deleted"),
        ],
    )
    async def test_a_hinted_row_is_rechecked_against_its_current_inputs(
        self, current: dict[int, str], kept: bool
    ) -> None:
        """A hinted row keeps its answer only if the station row still has the inputs the answer was computed from."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        world.rows.inputs = dict(current)
        async with following(world):
            world.follower.hint(Hint(rotation_ids=(1,)))
            await world.answers.load_calls.reached(2)
        assert world.rows.checks == [[1]]
        assert (world.cached(1) is not None) is kept
        assert world.follower.status()["dropped"] == (0 if kept else 1)
        assert world.hinted == [[1]]

    async def test_a_changed_row_is_dropped_and_an_unchanged_row_stays(self, caplog: pytest.LogCaptureFixture) -> None:
        """Of two hinted rows only the changed one loses its answer, and one line names it."""
        world = make_world([stored_row(1, seq=1), stored_row(2, seq=2)])
        await world.follower.load_all()
        world.rows.inputs[2] = "fp-2-new"
        with caplog.at_level(logging.INFO, logger=LOGGER):
            async with following(world):
                world.follower.hint(Hint(rotation_ids=(2, 1)))
                await world.answers.load_calls.reached(2)
        assert world.cached(1) is not None
        assert world.cached(2) is None
        assert world.hinted == [[1, 2]]
        assert world.follower.status()["hints"] == 2
        assert follower_lines(caplog, "invalidated") == [
            "[rotation-tracks-cache-warm] invalidated: worker=w1 rows=1 rotation_ids=2"
        ]

    async def test_a_hint_drops_a_cold_cache_entry(self) -> None:
        """An id answered "not found" from the cold cache is forgotten once a hint says the row now exists."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        resolution = await world.resolver.resolve(9)
        assert resolution.outcome is Outcome.NOT_FOUND
        assert world.cached(9) is not None
        world.rows.inputs[9] = "fp-9"
        async with following(world):
            world.follower.hint(Hint(rotation_ids=(9,)))
            await world.answers.load_calls.reached(2)
        assert world.cached(9) is None
        assert world.cached(1) is not None

    async def test_library_hints_map_to_rotation_ids(self) -> None:
        """A library_identity change re-checks the rotation rows linked to that library row."""
        world = make_world(
            [stored_row(1, seq=1), stored_row(2, seq=2), stored_row(3, seq=3)], albums={77: [1, 3], 78: []}
        )
        await world.follower.load_all()
        world.rows.inputs[1] = "fp-1-new-tier2"
        async with following(world):
            world.follower.hint(Hint(library_ids=(77, 78)))
            await world.answers.load_calls.reached(2)
        assert sorted(world.rows.album_queries[0]) == [77, 78]
        assert world.rows.checks == [[1, 3]]
        assert world.cached(1) is None
        assert world.cached(2) is not None and world.cached(3) is not None
        assert world.hinted == [[1, 3]]

    @pytest.mark.parametrize(
        "signal",
        [pytest.param("missed", id="reconnect"), pytest.param("unreadable", id="unreadable-notification")],
    )
    async def test_missed_hints_recheck_every_cached_row(self, signal: str, caplog: pytest.LogCaptureFixture) -> None:
        """After lost notifications every cached row (and cold entry) is re-checked, and the walker is told."""
        world = make_world([stored_row(1, seq=1), stored_row(2, seq=2), stored_row(3, seq=3)])
        await world.follower.load_all()
        await world.resolver.resolve(9)  # a cold "not found" answer
        world.rows.inputs[2] = "fp-2-new"
        with caplog.at_level(logging.INFO, logger=LOGGER):
            async with following(world):
                if signal == "missed":
                    world.follower.missed()
                else:
                    world.follower.hint(UNREADABLE)
                await world.answers.load_calls.reached(2)
        assert sorted(world.rows.checks[0]) == [1, 2, 3, 9]
        assert world.cached(2) is None and world.cached(9) is None
        assert world.cached(1) is not None and world.cached(3) is not None
        assert world.missed == ["missed"]
        assert follower_lines(caplog, "rechecked") == [
            "[rotation-tracks-cache-warm] rechecked: worker=w1 cached=4 dropped=2"
        ]

    async def test_an_answers_hint_reads_new_answers_without_rechecking(self) -> None:
        """A notification of new answers reads them at once and re-checks nothing."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        world.store(stored_row(5, seq=2))
        async with following(world):
            world.follower.hint(Hint(answers=True))
            await world.answers.load_calls.reached(2)
        assert world.cached(5) is not None
        assert world.rows.checks == []
        assert world.hinted == []

    @pytest.mark.parametrize(
        "signal",
        [pytest.param("row", id="row-hint"), pytest.param("missed", id="missed-hints")],
    )
    async def test_a_database_error_during_a_recheck_keeps_the_hint(self, signal: str) -> None:
        """A re-check the database interrupted is done again in the next round; nothing is forgotten."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        world.rows.inputs[1] = "fp-1-new"
        world.rows.down.append(asyncpg.CannotConnectNowError("the database system is shutting down"))
        async with following(world):
            if signal == "row":
                world.follower.rows_hinted([1])
            else:
                world.follower.missed()
            await world.rows.check_calls.reached(1)
            assert world.cached(1) is not None
            assert world.hinted == []
            world.follower.answers_written()  # the next round
            await world.answers.load_calls.reached(2)
        assert world.rows.checks == [[1], [1]]
        assert world.cached(1) is None
        assert world.hinted == ([[1]] if signal == "row" else [])

    async def test_an_unexpected_error_is_logged_and_the_loop_goes_on(self, caplog: pytest.LogCaptureFixture) -> None:
        """A bug in one round is logged with its traceback; the next round still runs."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        world.rows.down.append(RuntimeError("bug"))
        world.rows.inputs[1] = "fp-1-new"
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            async with following(world):
                world.follower.rows_hinted([1])
                await world.rows.check_calls.reached(1)
                world.follower.answers_written()
                await world.answers.load_calls.reached(2)
        assert world.cached(1) is None
        [record] = [r for r in caplog.records if r.name == LOGGER and "follow_failed" in r.getMessage()]
        assert record.exc_info is not None

    async def test_run_loads_everything_once_the_database_is_back(self) -> None:
        """When the first load failed, the next round loads every answer."""
        world = make_world([stored_row(1, seq=1), stored_row(2, seq=2)])
        world.answers.down.append(ConnectionRefusedError())
        assert await world.follower.load_all() is False
        async with following(world):
            world.follower.answers_written()
            await world.answers.load_calls.reached(2)
        assert world.answers.loads == [0, 0]
        assert world.cached(1) is not None and world.cached(2) is not None
        assert world.follower.status()["loaded"] is True

    @pytest.mark.parametrize(
        "signal",
        [pytest.param("row", id="row-hinted-again"), pytest.param("missed", id="missed-again")],
    )
    async def test_a_hint_during_its_recheck_is_rechecked_again(self, signal: str) -> None:
        """A row hinted again (or hints missed again) while a re-check reads the station is re-checked once more."""
        world = make_world([stored_row(1, seq=1)])
        await world.follower.load_all()
        gate = world.rows.gate = Gate()
        async with following(world):
            if signal == "row":
                world.follower.rows_hinted([1])
            else:
                world.follower.missed()
            await gate.in_flight()  # the re-check has read "fp-1": unchanged
            world.rows.inputs[1] = "fp-1-changed-after-the-read"
            if signal == "row":
                world.follower.rows_hinted([1])
            else:
                world.follower.missed()
            gate.open()
            await world.answers.load_calls.reached(3)  # this round and the next one have both finished
        assert world.cached(1) is None
