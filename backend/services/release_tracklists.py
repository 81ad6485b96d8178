"""Release tracklists from LML: cached in memory and in PostgreSQL, fetched once (single-flight)."""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from backend.clients.lml import Release
from backend.db.answers import StoredRelease
from backend.db.errors import DATABASE_ERRORS
from backend.errors import LmlNotFoundError
from backend.models import TrackBody, tracks_body, with_artist_fallback
from backend.services.caches import Caches

logger = logging.getLogger(__name__)


class ReleaseSource(Protocol):
    """The part of the LML client this service uses."""

    async def get_release(self, release_id: int, *, priority: str = "live") -> Release: ...


class ReleaseAnswers(Protocol):
    """The part of the answer store this service uses."""

    async def release(self, release_id: int) -> StoredRelease | None: ...

    async def save_release(self, release_id: int, tracks: str | None, ttl_s: float) -> int: ...


class ReleaseOutcome(str, enum.Enum):
    """What one fetch did, so callers never infer it from cache sizes."""

    FETCHED = "fetched"  # LML answered; the tracklist is now cached
    NOT_FOUND = "not_found"  # LML answered 404; cached as a negative
    CACHE_HIT = "cache_hit"  # positive hit in memory or in PostgreSQL, no LML call
    NEGATIVE_HIT = "negative_hit"  # negative hit, no LML call
    COALESCED = "coalesced"  # joined another caller's in-flight fetch


@dataclass(frozen=True, slots=True)
class ReleaseFetch:
    outcome: ReleaseOutcome
    tracks: TrackBody | None  # None means "no such release" (answer [])

    @property
    def already_warm(self) -> bool:
        return self.outcome in (ReleaseOutcome.CACHE_HIT, ReleaseOutcome.NEGATIVE_HIT, ReleaseOutcome.COALESCED)


class ReleaseTracklistService:
    """Fetch a release's tracklist once, share it, keep it.

    Args:
        source: the LML client (``get_release``).
        answers: the persisted release answers.
        caches: the process caches (``release_positive``: 24 h; ``release_negative``: LML 404s, 10 min).
    """

    def __init__(self, source: ReleaseSource, answers: ReleaseAnswers, *, caches: Caches) -> None:
        self._source = source
        self._answers = answers
        self.positive = caches.release_positive
        self.negative = caches.release_negative
        self._inflight: dict[int, asyncio.Task[ReleaseFetch]] = {}

    async def fetch(
        self, release_id: int, *, priority: str = "live", fresh: bool = False, must_store: bool = False
    ) -> ReleaseFetch:
        """Return the release's projected tracklist.

        Args:
            release_id: the Discogs release.
            priority: limiter priority ("warm" for the background walk).
            fresh: ask LML even if an answer is cached or persisted (a refresh).
            must_store: a database error while storing the tracklist propagates (the walk pauses and
                fetches again) instead of only being logged.

        Raises:
            LmlError: LML could not answer (never cached; the next call retries).
        """
        if not fresh:
            hit = self._cached(release_id)
            if hit is not None:
                return hit
        task = self._inflight.get(release_id)
        if task is not None:
            result = await asyncio.shield(task)
            return ReleaseFetch(ReleaseOutcome.COALESCED, result.tracks)
        task = asyncio.ensure_future(self._fetch_and_keep(release_id, priority, fresh, must_store))
        self._inflight[release_id] = task
        task.add_done_callback(lambda _t: self._inflight.pop(release_id, None))
        # Shielded: a cancelled caller must not cancel the fetch other callers are waiting on.
        return await asyncio.shield(task)

    def _cached(self, release_id: int) -> ReleaseFetch | None:
        tracks = self.positive.get(release_id)
        if tracks is not None:
            return ReleaseFetch(ReleaseOutcome.CACHE_HIT, tracks)
        if self.negative.get(release_id) is not None:
            return ReleaseFetch(ReleaseOutcome.NEGATIVE_HIT, None)
        return None

    async def _fetch_and_keep(self, release_id: int, priority: str, fresh: bool, must_store: bool) -> ReleaseFetch:
        if not fresh:
            stored = await self._stored(release_id)
            if stored is not None:
                self.load(stored)
                hit = self._cached(release_id)
                if hit is not None:
                    return hit
        try:
            release = await self._source.get_release(release_id, priority=priority)
        except LmlNotFoundError:
            self.negative.set(release_id, True)
            await self._persist(release_id, None, self.negative.ttl_s, must_store)
            return ReleaseFetch(ReleaseOutcome.NOT_FOUND, None)
        tracks = tracks_body(with_artist_fallback(release.tracklist, release.artist) or ())
        self.positive.set(release_id, tracks)
        await self._persist(release_id, tracks.text, self.positive.ttl_s, must_store)
        return ReleaseFetch(ReleaseOutcome.FETCHED, tracks)

    async def _stored(self, release_id: int) -> StoredRelease | None:
        try:
            return await self._answers.release(release_id)
        except DATABASE_ERRORS as exc:  # the store is a cache: without it, ask LML
            logger.warning("stored release unreadable release_id=%d error=%r", release_id, exc)
            return None

    async def _persist(self, release_id: int, tracks: str | None, ttl_s: float, must_store: bool) -> None:
        try:
            await self._answers.save_release(release_id, tracks, ttl_s)
        except DATABASE_ERRORS as exc:  # kept in memory anyway: a release's tracklist does not go stale
            if must_store:
                raise
            logger.warning("release not stored release_id=%d error=%r", release_id, exc)

    def load(self, stored: StoredRelease) -> None:
        """Put a persisted release into memory (loading at start, following new answers)."""
        if stored.tracks is None:
            self.negative.set(stored.release_id, True, stored.ttl_s)
        else:
            self.positive.set(stored.release_id, TrackBody.of_json(stored.tracks), stored.ttl_s)

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
