"""Release tracklists from LML, cached per release id with single-flight fetches."""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from backend.clients.lml import Release
from backend.errors import LmlNotFoundError
from backend.models import Tracklist, with_artist_fallback
from backend.services.caches import ExpiringCache

logger = logging.getLogger(__name__)


class ReleaseSource(Protocol):
    """The part of the LML client this service uses."""

    async def get_release(self, release_id: int, *, priority: str = "live") -> Release: ...


class ReleaseOutcome(str, enum.Enum):
    """What one fetch did, so callers never infer it from cache sizes."""

    FETCHED = "fetched"  # LML answered; the tracklist is now cached
    NOT_FOUND = "not_found"  # LML answered 404; cached as a negative
    CACHE_HIT = "cache_hit"  # positive cache hit, no LML call
    NEGATIVE_HIT = "negative_hit"  # negative cache hit, no LML call
    COALESCED = "coalesced"  # joined another caller's in-flight fetch


@dataclass(frozen=True, slots=True)
class ReleaseFetch:
    outcome: ReleaseOutcome
    tracks: Tracklist | None  # None means "no such release" (answer [])

    @property
    def already_warm(self) -> bool:
        return self.outcome in (ReleaseOutcome.CACHE_HIT, ReleaseOutcome.NEGATIVE_HIT, ReleaseOutcome.COALESCED)


class ReleaseTracklistService:
    """Fetch a release's tracklist once, share it, cache it.

    Args:
        source: the LML client (``get_release``).
        positive: release id -> tracklist (24 h).
        negative: release id -> True for LML 404s (10 min).
    """

    def __init__(
        self,
        source: ReleaseSource,
        *,
        positive: ExpiringCache[int, Tracklist],
        negative: ExpiringCache[int, bool],
    ) -> None:
        self._source = source
        self.positive = positive
        self.negative = negative
        self._inflight: dict[int, asyncio.Task[ReleaseFetch]] = {}

    async def fetch(self, release_id: int, *, priority: str = "live", fresh_after: float | None = None) -> ReleaseFetch:
        """Return the release's projected tracklist.

        Args:
            release_id: the Discogs release.
            priority: limiter priority ("warm" for the background walk).
            fresh_after: ignore cached entries older than this monotonic time (a refresh walk).

        Raises:
            LmlError: LML could not answer (never cached; the next call retries).
        """
        cached = self.positive.get(release_id, fresh_after=fresh_after)
        if cached is not None:
            return ReleaseFetch(ReleaseOutcome.CACHE_HIT, cached)
        if self.negative.get(release_id, fresh_after=fresh_after) is not None:
            return ReleaseFetch(ReleaseOutcome.NEGATIVE_HIT, None)
        task = self._inflight.get(release_id)
        if task is not None:
            result = await asyncio.shield(task)
            return ReleaseFetch(ReleaseOutcome.COALESCED, result.tracks)
        task = asyncio.ensure_future(self._fetch_and_cache(release_id, priority))
        self._inflight[release_id] = task
        task.add_done_callback(lambda _t: self._inflight.pop(release_id, None))
        # Shielded: a cancelled caller must not cancel the fetch other callers are waiting on.
        return await asyncio.shield(task)

    async def _fetch_and_cache(self, release_id: int, priority: str) -> ReleaseFetch:
        try:
            release = await self._source.get_release(release_id, priority=priority)
        except LmlNotFoundError:
            self.negative.set(release_id, True)
            return ReleaseFetch(ReleaseOutcome.NOT_FOUND, None)
        tracks = with_artist_fallback(release.tracklist, release.artist) or ()
        self.positive.set(release_id, tracks)
        return ReleaseFetch(ReleaseOutcome.FETCHED, tracks)

    async def aclose(self) -> None:
        """Cancel in-flight fetches (shutdown)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, object]:
        return {
            "positive": self.positive.stats(),
            "negative": self.negative.stats(),
            "inflight": len(self._inflight),
        }
