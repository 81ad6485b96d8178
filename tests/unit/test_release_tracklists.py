"""Release tracklist fetches: memory, the persisted store, then LML once (single-flight); 404 negatives."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from backend.clients.lml import Release
from backend.db.answers import StoredRelease
from backend.errors import LmlError, LmlNotFoundError, LmlUnavailableError
from backend.models import RotationTrack, TrackBody, weak_etag
from backend.services.caches import Caches, ExpiringCache
from backend.services.release_tracklists import ReleaseFetch, ReleaseOutcome, ReleaseTracklistService
from tests.unit.fakes import FakeClock, finished, settle

T = TypeVar("T")

POSITIVE_TTL_S = 86_400.0
NEGATIVE_TTL_S = 600.0
LOGGER = "backend.services.release_tracklists"
REFUSED = ConnectionRefusedError(111, "Connection refused")


@dataclass
class FakeReleases:
    """The LML client: answers (or errors) in order, optionally held until ``gate`` opens."""

    answers: list[Release | LmlError] = field(default_factory=list)
    calls: list[tuple[int, str]] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def get_release(self, release_id: int, *, priority: str = "live") -> Release:
        self.calls.append((release_id, priority))
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, LmlError):
            raise answer
        return answer


@dataclass
class FakeAnswers:
    """The persisted release answers: what ``release`` returns (or raises), and what was saved."""

    stored: dict[int, StoredRelease] = field(default_factory=dict)
    read_error: Exception | None = None
    save_error: Exception | None = None
    reads: list[int] = field(default_factory=list)
    saves: list[tuple[int, str | None, float]] = field(default_factory=list)

    async def release(self, release_id: int) -> StoredRelease | None:
        self.reads.append(release_id)
        if self.read_error is not None:
            raise self.read_error
        return self.stored.get(release_id)

    async def save_release(self, release_id: int, tracks: str | None, ttl_s: float) -> int:
        if self.save_error is not None:
            raise self.save_error
        self.saves.append((release_id, tracks, ttl_s))
        return len(self.saves)


def make_release(release_id: int = 4080, artist: str | None = "Autechre") -> Release:
    return Release(
        release_id=release_id,
        artist=artist,
        tracklist=(
            RotationTrack("A1", "Pen Expers", "7:12", ()),
            RotationTrack("A2", "Sim Gishel", None, ("X",)),
        ),
    )


EXPECTED_TRACKS = [
    {"position": "A1", "title": "Pen Expers", "duration": "7:12", "artists": ["Autechre"]},
    {"position": "A2", "title": "Sim Gishel", "duration": None, "artists": ["X"]},
]


def make_stored(
    release_id: int = 4080, tracks: str | None = '[{"position":"1"}]', ttl_s: float = 3600.0
) -> StoredRelease:
    return StoredRelease(release_id=release_id, tracks=tracks, ttl_s=ttl_s, seq=12)


def make_service(
    source: FakeReleases, answers: FakeAnswers | None = None, clock: FakeClock | None = None
) -> ReleaseTracklistService:
    clock = clock or FakeClock(0.0)
    caches = Caches(
        rotation=ExpiringCache(500, 86_400, clock=clock),
        cold=ExpiringCache(500, 86_400, clock=clock),
        release_positive=ExpiringCache(500, POSITIVE_TTL_S, clock=clock),
        release_negative=ExpiringCache(500, NEGATIVE_TTL_S, clock=clock),
    )
    return ReleaseTracklistService(source, answers or FakeAnswers(), caches=caches)


def parsed(fetch: ReleaseFetch) -> Any:
    assert fetch.tracks is not None
    return json.loads(fetch.tracks.json)


class TestFetchFromLml:
    async def test_projects_with_release_artist_fallback_caches_and_persists(self) -> None:
        """Tracks without per-track artists carry the release artist; the body is cached and stored."""
        source, answers = FakeReleases([make_release()]), FakeAnswers()
        service = make_service(source, answers)
        first = await service.fetch(4080)
        assert first.outcome is ReleaseOutcome.FETCHED and not first.already_warm
        assert parsed(first) == EXPECTED_TRACKS
        assert first.tracks is not None and first.tracks.etag == weak_etag(first.tracks.json)
        assert answers.saves == [(4080, first.tracks.text, POSITIVE_TTL_S)]
        second = await service.fetch(4080)
        assert second.outcome is ReleaseOutcome.CACHE_HIT and second.already_warm
        assert second.tracks is first.tracks
        assert source.calls == [(4080, "live")]
        assert answers.reads == [4080]

    async def test_empty_tracklist_is_an_empty_positive(self) -> None:
        """A release with no tracks answers ``[]`` and is still a positive entry."""
        source = FakeReleases([Release(release_id=1, artist="A", tracklist=())])
        service = make_service(source)
        assert parsed(await service.fetch(1)) == []
        assert (await service.fetch(1)).outcome is ReleaseOutcome.CACHE_HIT

    async def test_not_found_is_a_negative_for_ten_minutes(self) -> None:
        """An LML 404 is kept (in memory and in the store) as a negative, then LML is asked again."""
        clock = FakeClock(0.0)
        source, answers = (
            FakeReleases([LmlNotFoundError("LML responded with 404: Not Found"), make_release()]),
            FakeAnswers(),
        )
        service = make_service(source, answers, clock)
        first = await service.fetch(4080)
        assert (first.outcome, first.tracks) == (ReleaseOutcome.NOT_FOUND, None)
        assert answers.saves == [(4080, None, NEGATIVE_TTL_S)]
        clock.now = NEGATIVE_TTL_S - 1
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.NEGATIVE_HIT
        clock.now = NEGATIVE_TTL_S + 1
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED
        assert [call[0] for call in source.calls] == [4080, 4080]

    async def test_other_errors_propagate_and_are_not_kept(self) -> None:
        """A 5xx reaches the caller, nothing is cached or stored, and the retry goes back to LML."""
        source = FakeReleases([LmlUnavailableError("LML responded with 503: Service Unavailable"), make_release()])
        answers = FakeAnswers()
        service = make_service(source, answers)
        with pytest.raises(LmlUnavailableError):
            await service.fetch(4080)
        assert answers.saves == []
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED

    async def test_priority_reaches_lml(self) -> None:
        """The walk's background priority is passed to the LML client."""
        source = FakeReleases([make_release()])
        await make_service(source).fetch(4080, priority="warm")
        assert source.calls == [(4080, "warm")]


class TestPersistedStore:
    async def test_stored_release_is_used_without_lml(self) -> None:
        """On a memory miss a persisted tracklist is served and kept in memory; LML is not asked."""
        answers = FakeAnswers({4080: make_stored()})
        source = FakeReleases()
        service = make_service(source, answers)
        first = await service.fetch(4080)
        assert first.outcome is ReleaseOutcome.CACHE_HIT
        assert first.tracks == TrackBody.of_json('[{"position":"1"}]')
        assert (await service.fetch(4080)).tracks == first.tracks
        assert (source.calls, answers.reads, answers.saves) == ([], [4080], [])

    async def test_stored_negative_is_used_without_lml(self) -> None:
        """A persisted 404 answers "no such release" without asking LML."""
        source = FakeReleases()
        service = make_service(source, FakeAnswers({4080: make_stored(tracks=None)}))
        result = await service.fetch(4080)
        assert (result.outcome, result.tracks) == (ReleaseOutcome.NEGATIVE_HIT, None)
        assert source.calls == []

    async def test_stored_release_lives_only_as_long_as_it_has_left(self) -> None:
        """A persisted answer is kept in memory for its remaining lifetime, then the store is asked again."""
        clock = FakeClock(0.0)
        answers = FakeAnswers({4080: make_stored(ttl_s=120.0)})
        service = make_service(FakeReleases(), answers, clock)
        await service.fetch(4080)
        clock.now = 119.0
        await service.fetch(4080)
        clock.now = 121.0
        await service.fetch(4080)
        assert answers.reads == [4080, 4080]

    async def test_unreadable_store_falls_through_to_lml(self, caplog: pytest.LogCaptureFixture) -> None:
        """A database error reading the store is logged and LML is asked."""
        source = FakeReleases([make_release()])
        service = make_service(source, FakeAnswers(read_error=REFUSED))
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED
        assert "stored release unreadable release_id=4080" in caplog.text
        assert len(source.calls) == 1

    async def test_failed_save_keeps_the_tracklist_in_memory(self, caplog: pytest.LogCaptureFixture) -> None:
        """A database error storing the tracklist is logged; the answer is served and stays in memory."""
        source = FakeReleases([make_release()])
        service = make_service(source, FakeAnswers(save_error=REFUSED))
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED
        assert "release not stored release_id=4080" in caplog.text
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.CACHE_HIT
        assert len(source.calls) == 1

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param(make_release(), id="found"),
            pytest.param(LmlNotFoundError("LML responded with 404: Not Found"), id="not-found"),
        ],
    )
    async def test_must_store_lets_the_store_error_propagate(self, answer: Release | LmlError) -> None:
        """With ``must_store`` (the walk) a database error storing the answer is raised instead of logged."""
        service = make_service(FakeReleases([answer]), FakeAnswers(save_error=REFUSED))
        with pytest.raises(ConnectionRefusedError):
            await service.fetch(4080, priority="warm", must_store=True)

    async def test_fresh_skips_memory_and_store(self) -> None:
        """``fresh=True`` asks LML even with an answer in memory and in the store, and keeps the new one."""
        answers = FakeAnswers({4080: make_stored()})
        source = FakeReleases([make_release()])
        service = make_service(source, answers)
        await service.fetch(4080)
        refreshed = await service.fetch(4080, fresh=True)
        assert refreshed.outcome is ReleaseOutcome.FETCHED
        assert parsed(refreshed) == EXPECTED_TRACKS
        assert answers.reads == [4080]
        assert (await service.fetch(4080)).tracks == refreshed.tracks
        assert len(source.calls) == 1


class TestLoad:
    def test_load_positive_and_negative(self) -> None:
        """Loading persisted answers puts tracklists and 404s into memory for their remaining lifetime."""
        clock = FakeClock(0.0)
        service = make_service(FakeReleases(), clock=clock)
        service.load(make_stored(1, '[{"position":"1"}]', ttl_s=100.0))
        service.load(make_stored(2, None, ttl_s=50.0))
        assert service.positive.peek(1) == TrackBody.of_json('[{"position":"1"}]')
        assert service.negative.peek(2) is True
        clock.now = 60.0
        assert service.negative.peek(2) is None
        assert service.positive.peek(1) is not None

    async def test_loaded_answer_is_served_without_store_or_lml(self) -> None:
        """A loaded tracklist answers the next fetch from memory."""
        source, answers = FakeReleases(), FakeAnswers()
        service = make_service(source, answers)
        service.load(make_stored(4080))
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.CACHE_HIT
        assert (source.calls, answers.reads) == ([], [])


class TestSingleFlight:
    async def test_concurrent_fetches_share_one_call(self) -> None:
        """Three concurrent fetches of one id make one LML call and share the same body."""
        gate = asyncio.Event()
        source = FakeReleases([make_release()], gate=gate)
        service = make_service(source)
        tasks = [asyncio.ensure_future(service.fetch(4080)) for _ in range(3)]
        await settle()
        assert service.stats()["inflight"] == 1
        gate.set()
        results = [await finished(task) for task in tasks]
        assert len(source.calls) == 1
        assert results[0].tracks is results[1].tracks is results[2].tracks
        assert sorted(r.outcome.value for r in results) == ["coalesced", "coalesced", "fetched"]
        assert service.stats()["inflight"] == 0

    async def test_cancelled_caller_does_not_cancel_shared_fetch(self) -> None:
        """One waiter giving up leaves the fetch running for the others."""
        gate = asyncio.Event()
        source = FakeReleases([make_release()], gate=gate)
        service = make_service(source)
        first = asyncio.ensure_future(service.fetch(4080))
        second = asyncio.ensure_future(service.fetch(4080))
        await settle()
        first.cancel()
        gate.set()
        assert (await finished(second)).tracks is not None
        assert first.cancelled()

    async def test_error_reaches_every_waiter_and_is_not_kept(self) -> None:
        """A failed shared fetch raises for each waiter; the next fetch asks LML again."""
        gate = asyncio.Event()
        source = FakeReleases([LmlUnavailableError("LML responded with 502: Bad Gateway"), make_release()], gate=gate)
        service = make_service(source)
        tasks = [asyncio.ensure_future(service.fetch(4080)) for _ in range(2)]
        await settle()
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, LmlUnavailableError) for r in results)
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED

    async def test_aclose_cancels_fetches_in_flight(self) -> None:
        """Shutdown cancels the fetches still waiting on LML."""
        source = FakeReleases([make_release()], gate=asyncio.Event())
        service = make_service(source)
        waiter = asyncio.ensure_future(service.fetch(4080))
        await settle()
        await service.aclose()
        with pytest.raises(asyncio.CancelledError):
            await finished(waiter)
        assert service.stats()["inflight"] == 0
