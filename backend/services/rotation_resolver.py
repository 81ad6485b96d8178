"""Three-tier resolver: which release (or inline tracklist) a rotation row's picker shows."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from backend.clients.lml import LookupResponse
from backend.db.rotation import PickerRow
from backend.errors import LmlError
from backend.models import Tracklist, with_artist_fallback
from backend.services.caches import ExpiringCache

logger = logging.getLogger(__name__)

# A confirmed tier-3 miss is not retried for this long (persisted, so it survives restarts).
NEGATIVE_STAMP_WINDOW = dt.timedelta(days=7)
# Rows the walk prefetched are used only this soon after they were read (a live-DJ pause may intervene).
PREFETCH_MAX_AGE_S = 30.0

_VA_PATTERNS = (
    re.compile(r"^v[\s./]*a\.?$"),
    re.compile(r"^various$"),
    re.compile(r"^various\s+art"),
    re.compile(r"^var\.?\s+art"),
)


def is_various_artists(name: str | None) -> bool:
    """Whether ``name`` means "Various Artists" (those rows are looked up by album only)."""
    text = (name or "").strip().lower()
    return bool(text) and any(p.match(text) for p in _VA_PATTERNS)


class Outcome(str, enum.Enum):
    """How a row was resolved. Callers count these; they never infer them from cache sizes."""

    TIER1 = "tier1"  # rotation.discogs_release_id
    TIER2 = "tier2"  # library_identity.discogs_release_id
    NOT_FOUND = "not_found"  # no such rotation row
    STAMP_SKIP = "stamp_skip"  # confirmed miss less than 7 days ago
    NO_TEXT = "no_text"  # no artist or album to look up
    LML_UNCONFIGURED = "lml_unconfigured"
    CACHE_HIT = "cache_hit"  # answered from the row cache with a source
    CACHE_NEGATIVE = "cache_negative"  # answered from the row cache: nothing to show
    LML_POSITIVE = "lml_positive"  # LML matched; cached
    LML_NEGATIVE = "lml_negative"  # LML confirmed no usable match; cached and stamped
    LML_ERROR = "lml_error"  # LML could not answer; nothing cached


# Outcomes whose answer is kept in the row cache. Safe for stored ids and text too, because the
# database NOTIFYs every worker when a row's text, links or ids change (migration 0002).
CACHEABLE = frozenset(
    {
        Outcome.TIER1,
        Outcome.TIER2,
        Outcome.NOT_FOUND,
        Outcome.STAMP_SKIP,
        Outcome.NO_TEXT,
        Outcome.LML_POSITIVE,
        Outcome.LML_NEGATIVE,
    }
)


@dataclass(frozen=True, slots=True)
class PickerSource:
    """Where the tracklist comes from. Never both None."""

    release_id: int | None
    inline_tracklist: Tracklist | None


@dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    source: PickerSource | None
    error: str | None = None  # set for LML_ERROR


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What the row cache keeps: the answer and the outcome that produced it."""

    outcome: Outcome
    source: PickerSource | None


class RotationRows(Protocol):
    async def picker_row(self, rotation_id: int) -> PickerRow | None: ...

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]: ...

    async def stamp_lookup_attempted(self, rotation_id: int) -> None: ...


class Lookup(Protocol):
    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RotationResolver:
    """Resolve a rotation row: row cache, then tier 1, tier 2, the persistent stamp, then LML.

    A cache hit touches neither the database nor LML.

    Args:
        rows: the rotation repository.
        lookup: the LML lookup coordinator (coalescing, short cache).
        lml_configured: whether LIBRARY_METADATA_URL is set.
        cache: rotation id -> CachedAnswer (24 h; stamp skips only until the stamp lapses).
        now: wall clock, for the 7-day stamp window.
    """

    def __init__(
        self,
        rows: RotationRows,
        lookup: Lookup,
        *,
        lml_configured: bool,
        cache: ExpiringCache[int, CachedAnswer],
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._rows = rows
        self._lookup = lookup
        self._lml_configured = lml_configured
        self.cache = cache
        self._now = now
        self._prefetched: dict[int, tuple[float, PickerRow | None]] = {}

    async def resolve(
        self, rotation_id: int, *, priority: str = "live", fresh_after: float | None = None
    ) -> Resolution:
        """Resolve one row. Database errors propagate; LML errors become ``LML_ERROR``.

        Args:
            rotation_id: the row.
            priority: limiter priority ("warm" for the background walk).
            fresh_after: ignore cached answers older than this monotonic time (a refresh walk).
        """
        cached = self.cache.get(rotation_id, fresh_after=fresh_after)
        if cached is not None:
            return Resolution(Outcome.CACHE_HIT if cached.source else Outcome.CACHE_NEGATIVE, cached.source)
        resolution, ttl_s = await self._resolve_uncached(rotation_id, priority)
        if resolution.outcome in CACHEABLE:
            self.cache.set(rotation_id, CachedAnswer(resolution.outcome, resolution.source), ttl_s)
        return resolution

    async def prefetch(self, rotation_ids: list[int]) -> None:
        """Read many rows' tier-1/2 data in one query; the next resolve of each uses it once.

        The walk calls this for its next rows, saving one database round trip per row. Entries
        are dropped by invalidation and ignored once older than PREFETCH_MAX_AGE_S.
        """
        rows = await self._rows.picker_rows(rotation_ids)
        read_at = self.cache.now()
        for rid in rotation_ids:
            self._prefetched[rid] = (read_at, rows.get(rid))

    async def _picker_row(self, rotation_id: int) -> PickerRow | None:
        prefetched = self._prefetched.pop(rotation_id, None)
        if prefetched is not None and self.cache.now() - prefetched[0] <= PREFETCH_MAX_AGE_S:
            return prefetched[1]
        return await self._rows.picker_row(rotation_id)

    async def _resolve_uncached(self, rotation_id: int, priority: str) -> tuple[Resolution, float | None]:
        row = await self._picker_row(rotation_id)
        if row is None:
            return Resolution(Outcome.NOT_FOUND, None), None
        if row.direct_release_id is not None:
            return Resolution(Outcome.TIER1, PickerSource(row.direct_release_id, None)), None
        if row.identity_release_id is not None and row.identity_release_id > 0:
            return Resolution(Outcome.TIER2, PickerSource(row.identity_release_id, None)), None
        stamp = row.lookup_attempted_at
        if stamp is not None:
            remaining = (stamp + NEGATIVE_STAMP_WINDOW - self._now()).total_seconds()
            if remaining > 0:
                return Resolution(Outcome.STAMP_SKIP, None), min(remaining, self.cache.ttl_s)
        artist, album = (row.artist_name or "").strip(), (row.album_title or "").strip()
        if not artist or not album:
            return Resolution(Outcome.NO_TEXT, None), None
        if not self._lml_configured:
            return Resolution(Outcome.LML_UNCONFIGURED, None), None
        return await self._resolve_via_lml(rotation_id, artist, album, priority), None

    async def _resolve_via_lml(self, rotation_id: int, artist: str, album: str, priority: str) -> Resolution:
        lookup_artist = None if is_various_artists(artist) else artist
        try:
            response = await self._lookup.lookup(lookup_artist, album, priority=priority)
        except LmlError as exc:
            logger.warning(
                "lml lookup failed rotation_id=%d error=%s; degrading picker to free-text",
                rotation_id,
                exc.message,
            )
            return Resolution(Outcome.LML_ERROR, None, exc.message)
        source = self._source_from(response, artist)
        if source is None and (response.timeout or response.degraded):
            # LML ran out of time or shed work: not a confirmed miss, so no cache and no stamp.
            reason = "timeout" if response.timeout else "degraded"
            logger.warning("lml lookup transient rotation_id=%d reason=%s", rotation_id, reason)
            return Resolution(Outcome.LML_ERROR, None, f"LML answered {reason} without a usable match")
        if source is not None:
            return Resolution(Outcome.LML_POSITIVE, source)
        try:
            await self._rows.stamp_lookup_attempted(rotation_id)
        except Exception:  # the stamp is an optimisation; the answer stands without it
            logger.exception("failed to stamp tracklist_lookup_attempted_at rotation_id=%d", rotation_id)
        return Resolution(Outcome.LML_NEGATIVE, None)

    @staticmethod
    def _source_from(response: LookupResponse, artist: str) -> PickerSource | None:
        # Trust gate: only an artist+album "direct" match may stand for this row (BS#1351).
        if response.search_type != "direct":
            return None
        raw_id = response.top_release_id
        # 0 is LML's MusicBrainz-rescue sentinel: no Discogs release, but the tracklist is valid.
        release_id = raw_id if raw_id is not None and raw_id > 0 else None
        inline = with_artist_fallback(response.top_tracklist, artist)
        if release_id is None and inline is None:
            return None
        return PickerSource(release_id, inline)

    def invalidate(self, rotation_id: int) -> bool:
        """Forget one row's cached answer (its text, links or ids changed); return whether it was cached."""
        self._prefetched.pop(rotation_id, None)
        return self.cache.delete(rotation_id)

    def invalidate_all(self) -> None:
        """Forget every row (notifications may have been missed)."""
        self._prefetched.clear()
        self.cache.clear()

    def stats(self) -> dict[str, int]:
        return self.cache.stats()
