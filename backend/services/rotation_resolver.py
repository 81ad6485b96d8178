"""Three-tier resolver: which release (or inline tracklist) a rotation row's picker shows."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from backend.clients.lml import LookupResponse
from backend.db.errors import DATABASE_ERRORS
from backend.db.rotation import PickerRow, StoredRow
from backend.errors import LmlError
from backend.models import TrackBody, tracks_body, with_artist_fallback
from backend.services.caches import Caches

logger = logging.getLogger(__name__)

# A confirmed tier-3 miss is not retried for this long (persisted, so it survives restarts).
NEGATIVE_STAMP_WINDOW = dt.timedelta(days=7)
# Rows the walk prefetched are used only this soon after they were read (a live-DJ pause may intervene).
PREFETCH_MAX_AGE_S = 30.0
# Answers for unknown ids live this long in the cold cache (an insert also drops them at once).
NOT_FOUND_TTL_S = 60.0
# Answer lifetimes are spread over the last tenth of the TTL, so answers computed in one walk do
# not all expire (and get refreshed) in the same minute.
TTL_JITTER = 0.1

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
    CACHE_HIT = "cache_hit"  # answered from memory or the persisted answers, with a source
    CACHE_NEGATIVE = "cache_negative"  # answered from memory or the persisted answers: nothing to show
    LML_POSITIVE = "lml_positive"  # LML matched; cached
    LML_NEGATIVE = "lml_negative"  # LML confirmed no usable match; cached and stamped
    LML_ERROR = "lml_error"  # LML could not answer; nothing cached


# Outcomes whose answer is kept (in memory and in PostgreSQL). Safe for stored ids and text too:
# every answer carries the fingerprint of its inputs and is dropped when they change.
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
    inline: TrackBody | None


@dataclass(frozen=True, slots=True)
class Resolution:
    """An outcome, the answer (None: nothing to show) and the inputs it was computed from (None: cached)."""

    outcome: Outcome
    source: PickerSource | None
    error: str | None = None  # set for LML_ERROR
    inputs: str | None = None


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What the caches keep: the answer, the outcome that produced it and the inputs it was computed from."""

    outcome: Outcome
    source: PickerSource | None
    inputs: str | None

    @classmethod
    def of_stored(cls, stored: StoredRow) -> CachedAnswer:
        inline = TrackBody.of_json(stored.tracks) if stored.tracks is not None else None
        source = PickerSource(stored.release_id, inline) if (stored.release_id or inline) else None
        return cls(Outcome(stored.outcome), source, stored.inputs)


class RotationRows(Protocol):
    async def picker_row(self, rotation_id: int) -> PickerRow | None: ...

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]: ...

    async def stamp_lookup_attempted(self, rotation_id: int) -> None: ...

    async def clear_lookup_stamp(self, rotation_id: int) -> None: ...


class RowAnswers(Protocol):
    async def save_row(
        self,
        rotation_id: int,
        *,
        inputs: str,
        outcome: str,
        release_id: int | None,
        tracks: str | None,
        ttl_s: float,
    ) -> int | None: ...


class Lookup(Protocol):
    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RotationResolver:
    """Resolve a rotation row: caches, then the persisted answer, tier 1, tier 2, the stamp, then LML.

    A warm open touches neither PostgreSQL nor LML. A computed answer is stored (in PostgreSQL,
    then in memory) only if the row still has the inputs it was computed from, so a change that
    lands while LML is being asked never leaves a stale answer behind.

    Args:
        rows: the rotation repository.
        lookup: the LML lookup coordinator (coalescing, short cache).
        answers: the persisted answers (conditional writes).
        lml_configured: whether LIBRARY_METADATA_URL is set.
        caches: the process caches (``rotation`` for active rows, ``cold`` for the rest).
        now: wall clock, for the 7-day stamp window.
        rng: spreads answer lifetimes (:data:`TTL_JITTER`).
    """

    def __init__(
        self,
        rows: RotationRows,
        lookup: Lookup,
        answers: RowAnswers,
        *,
        lml_configured: bool,
        caches: Caches,
        now: Callable[[], dt.datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._rows = rows
        self._lookup = lookup
        self._answers = answers
        self._lml_configured = lml_configured
        self._caches = caches
        self._now = now
        self._rng = rng or random.Random()
        self._prefetched: dict[int, tuple[float, PickerRow | None]] = {}
        self.outcomes: collections.Counter[str] = collections.Counter()  # every resolution, by outcome

    @property
    def cache(self) -> Caches:
        return self._caches

    def cached(self, rotation_id: int) -> CachedAnswer | None:
        """The row's answer if a cache holds it (counts a hit or miss)."""
        c = self._caches
        return c.rotation.get(rotation_id) or c.cold.peek(rotation_id)

    async def resolve(
        self, rotation_id: int, *, priority: str = "live", fresh: bool = False, must_store: bool = False
    ) -> Resolution:
        """Resolve one row. Database errors propagate; LML errors become ``LML_ERROR``.

        Args:
            rotation_id: the row.
            priority: limiter priority ("warm" for the background walk).
            fresh: recompute even if an answer is cached or persisted (a refresh).
            must_store: a database error while storing the answer propagates instead of only being
                logged (the walk then pauses and resolves the row again; a DJ just gets the answer).
        """
        resolution = await self._resolve(rotation_id, priority, fresh, must_store)
        self.outcomes[resolution.outcome.value] += 1
        return resolution

    async def _resolve(self, rotation_id: int, priority: str, fresh: bool, must_store: bool) -> Resolution:
        if not fresh:
            cached = self.cached(rotation_id)
            if cached is not None:
                return Resolution(Outcome.CACHE_HIT if cached.source else Outcome.CACHE_NEGATIVE, cached.source)
        row = await self._picker_row(rotation_id)
        if row is None:
            self._caches.cold.set(rotation_id, CachedAnswer(Outcome.NOT_FOUND, None, None), NOT_FOUND_TTL_S)
            return Resolution(Outcome.NOT_FOUND, None)
        if row.stored is not None and not fresh:
            answer = CachedAnswer.of_stored(row.stored)
            self._remember(rotation_id, answer, row.active, row.stored.ttl_s)
            return Resolution(Outcome.CACHE_HIT if answer.source else Outcome.CACHE_NEGATIVE, answer.source)
        resolution, ttl_s = await self._resolve_row(row, priority)
        resolution = replace(resolution, inputs=row.inputs)
        if resolution.outcome in CACHEABLE:
            await self._store(row, resolution, ttl_s, must_store=must_store)
        return resolution

    async def prefetch(self, rotation_ids: list[int]) -> None:
        """Read many rows in one query; the next resolve of each uses it once.

        The walk calls this for its next rows, saving one database round trip per row. Entries
        are dropped by :meth:`revalidate` and ignored once older than PREFETCH_MAX_AGE_S.
        """
        rows = await self._rows.picker_rows(rotation_ids)
        read_at = self._caches.rotation.now()
        for rid in rotation_ids:
            self._prefetched[rid] = (read_at, rows.get(rid))

    async def _picker_row(self, rotation_id: int) -> PickerRow | None:
        prefetched = self._prefetched.pop(rotation_id, None)
        if prefetched is not None and self._caches.rotation.now() - prefetched[0] <= PREFETCH_MAX_AGE_S:
            return prefetched[1]
        return await self._rows.picker_row(rotation_id)

    def _ttl(self) -> float:
        return self._caches.rotation.ttl_s * (1.0 - TTL_JITTER * self._rng.random())

    async def _resolve_row(self, row: PickerRow, priority: str) -> tuple[Resolution, float]:
        ttl = self._ttl()
        if row.direct_release_id is not None:
            return Resolution(Outcome.TIER1, PickerSource(row.direct_release_id, None)), ttl
        if row.identity_release_id is not None and row.identity_release_id > 0:
            return Resolution(Outcome.TIER2, PickerSource(row.identity_release_id, None)), ttl
        stamp = row.lookup_attempted_at
        # A stamp counts unless this service's own answers say it was written for other inputs.
        if stamp is not None and row.stamp_trusted:
            remaining = (stamp + NEGATIVE_STAMP_WINDOW - self._now()).total_seconds()
            if remaining > 0:
                return Resolution(Outcome.STAMP_SKIP, None), min(remaining, ttl)
        artist, album = (row.artist_name or "").strip(), (row.album_title or "").strip()
        if not artist or not album:
            return Resolution(Outcome.NO_TEXT, None), ttl
        if not self._lml_configured:
            return Resolution(Outcome.LML_UNCONFIGURED, None), ttl
        return await self._resolve_via_lml(row.rotation_id, artist, album, priority), ttl

    async def _resolve_via_lml(self, rotation_id: int, artist: str, album: str, priority: str) -> Resolution:
        lookup_artist = None if is_various_artists(artist) else artist
        try:
            response = await self._lookup.lookup(lookup_artist, album, priority=priority)
        except LmlError as exc:
            logger.warning(
                "lml lookup failed rotation_id=%d error=%s; degrading picker to free-text", rotation_id, exc.message
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
        return Resolution(Outcome.LML_NEGATIVE, None)

    @staticmethod
    def _source_from(response: LookupResponse, artist: str) -> PickerSource | None:
        # Trust gate: only an artist+album "direct" match may stand for this row (BS#1351).
        if response.search_type != "direct":
            return None
        raw_id = response.top_release_id
        # 0 is LML's MusicBrainz-rescue sentinel: no Discogs release, but the tracklist is valid.
        release_id = raw_id if raw_id is not None and raw_id > 0 else None
        tracks = with_artist_fallback(response.top_tracklist, artist)
        inline = tracks_body(tracks) if tracks else None
        if release_id is None and inline is None:
            return None
        return PickerSource(release_id, inline)

    async def _store(self, row: PickerRow, resolution: Resolution, ttl_s: float, *, must_store: bool) -> None:
        """Persist then cache the answer, only if the row still has the inputs it was computed from."""
        rid, source = row.rotation_id, resolution.source
        answer = CachedAnswer(resolution.outcome, source, row.inputs)
        if not row.active:
            self._remember(rid, answer, False, ttl_s)  # not persisted: only rows in rotation are
            return
        try:
            seq = await self._answers.save_row(
                rid,
                inputs=row.inputs,
                outcome=resolution.outcome.value,
                release_id=source.release_id if source else None,
                tracks=source.inline.text if source and source.inline else None,
                ttl_s=ttl_s,
            )
        except DATABASE_ERRORS as exc:
            if must_store:
                raise
            logger.warning("answer not stored rotation_id=%d error=%r; not caching it", rid, exc)
            return
        if seq is None:
            logger.info(
                "answer discarded rotation_id=%d outcome=%s: the row changed meanwhile", rid, answer.outcome.value
            )
            return
        self._remember(rid, answer, True, ttl_s)
        await self._settle_stamp(row, resolution.outcome)

    async def _settle_stamp(self, row: PickerRow, outcome: Outcome) -> None:
        """Stamp a confirmed miss; clear a stamp LML has since contradicted. Best effort."""
        try:
            if outcome is Outcome.LML_NEGATIVE:
                await self._rows.stamp_lookup_attempted(row.rotation_id)
            elif outcome is Outcome.LML_POSITIVE and row.lookup_attempted_at is not None:
                await self._rows.clear_lookup_stamp(row.rotation_id)
        except DATABASE_ERRORS as exc:  # the stamp is an optimisation; the answer stands without it
            logger.warning("stamp not written rotation_id=%d error=%r", row.rotation_id, exc)

    def _remember(self, rotation_id: int, answer: CachedAnswer, active: bool, ttl_s: float) -> None:
        target = self._caches.rotation if active else self._caches.cold
        target.set(rotation_id, answer, ttl_s)

    def load(self, stored: StoredRow) -> None:
        """Put a persisted answer into memory (loading at start, following new answers)."""
        self._caches.rotation.set(stored.rotation_id, CachedAnswer.of_stored(stored), stored.ttl_s)

    def revalidate(self, checked: list[int], current: dict[int, str]) -> list[int]:
        """Drop cached answers whose row changed.

        Args:
            checked: the rotation ids that were looked up.
            current: rotation id -> current inputs fingerprint (absent: the row is gone).

        Returns:
            The ids whose cached answer was dropped.
        """
        dropped: list[int] = []
        c = self._caches
        for rid in checked:
            self._prefetched.pop(rid, None)
            if c.cold.delete(rid):
                dropped.append(rid)
            cached = c.rotation.peek(rid)
            if cached is not None and cached.inputs != current.get(rid):
                c.rotation.delete(rid)
                dropped.append(rid)
        return dropped

    def cached_ids(self) -> list[int]:
        return self._caches.rotation.keys()

    def stats(self) -> dict[str, int]:
        return self._caches.rotation.stats()
