"""Release tracklist fetches: projection, caching, 404 negatives, single-flight."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from backend.clients.lml import Release
from backend.errors import LmlError, LmlNotFoundError, LmlUnavailableError
from backend.models import RotationTrack
from backend.services.caches import ExpiringCache
from backend.services.release_tracklists import ReleaseOutcome, ReleaseTracklistService


@dataclass
class FakeReleases:
    answers: list[Release | LmlError] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def get_release(self, release_id: int, *, priority: str = "live") -> Release:
        self.calls.append(release_id)
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, LmlError):
            raise answer
        return answer


def make_release(release_id: int = 4080, artist: str | None = "Autechre") -> Release:
    return Release(
        release_id=release_id,
        artist=artist,
        tracklist=(
            RotationTrack("A1", "Pen Expers", "7:12", ()),
            RotationTrack("A2", "Sim Gishel", None, ("X",)),
        ),
    )


def make_service(source: FakeReleases, clock: list[float] | None = None) -> ReleaseTracklistService:
    now = clock if clock is not None else [0.0]
    return ReleaseTracklistService(
        source,
        positive=ExpiringCache(500, 86_400, clock=lambda: now[0]),
        negative=ExpiringCache(500, 600, clock=lambda: now[0]),
    )


class TestFetch:
    async def test_projects_with_release_artist_fallback_and_caches(self) -> None:
        """Tracks without per-track artists carry the release artist; a second fetch hits the cache."""
        source = FakeReleases([make_release()])
        service = make_service(source)
        first = await service.fetch(4080)
        second = await service.fetch(4080)
        assert first.outcome is ReleaseOutcome.FETCHED
        assert first.tracks == (
            RotationTrack("A1", "Pen Expers", "7:12", ("Autechre",)),
            RotationTrack("A2", "Sim Gishel", None, ("X",)),
        )
        assert second.outcome is ReleaseOutcome.CACHE_HIT and second.tracks is first.tracks
        assert source.calls == [4080]

    async def test_empty_tracklist_is_cached_as_empty(self) -> None:
        """A release with no tracks answers () and is still a positive entry."""
        source = FakeReleases([Release(release_id=1, artist="A", tracklist=())])
        service = make_service(source)
        assert (await service.fetch(1)).tracks == ()
        assert (await service.fetch(1)).outcome is ReleaseOutcome.CACHE_HIT

    async def test_not_found_is_cached_ten_minutes(self) -> None:
        """An LML 404 is a negative for 10 minutes, then LML is asked again."""
        clock = [0.0]
        source = FakeReleases([LmlNotFoundError("LML responded with 404: Not Found"), make_release()])
        service = make_service(source, clock)
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.NOT_FOUND
        clock[0] = 599.0
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.NEGATIVE_HIT
        clock[0] = 601.0
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED
        assert source.calls == [4080, 4080]

    async def test_other_errors_propagate_and_are_not_cached(self) -> None:
        """A 5xx reaches the caller and the retry goes back to LML."""
        source = FakeReleases([LmlUnavailableError("LML responded with 503: Service Unavailable"), make_release()])
        service = make_service(source)
        with pytest.raises(LmlUnavailableError):
            await service.fetch(4080)
        assert (await service.fetch(4080)).outcome is ReleaseOutcome.FETCHED

    async def test_concurrent_fetches_share_one_call(self) -> None:
        """Three concurrent fetches of one id make one LML call and share the same tuple."""
        gate = asyncio.Event()
        source = FakeReleases([make_release()], gate=gate)
        service = make_service(source)
        tasks = [asyncio.ensure_future(service.fetch(4080)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks)
        assert source.calls == [4080]
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
        await asyncio.sleep(0)
        first.cancel()
        gate.set()
        assert (await second).tracks is not None
        assert first.cancelled()
