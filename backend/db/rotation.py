"""Rotation queries on the station schema: the list, the walk, the resolver's row, the stamp and the live probe."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from backend.db.schemas import Schemas

# How long a stamp write waits for a row lock held by someone else before giving up.
STAMP_LOCK_TIMEOUT = "500ms"

# Stored with this outcome, a row is not answered but waiting for the walk's next attempt.
RETRY_OUTCOME = "lml_error"

# The one definition of an "active" rotation row. Every query that needs it uses this constant.
# A kill date equal to today is already inactive (CURRENT_DATE in the session's time zone).
ACTIVE_ROTATION = "(r.kill_date IS NULL OR r.kill_date > CURRENT_DATE)"

# Heavy rotation first (H, M, L, S: the enum is declared S < L < M < H), newest first within a bin,
# so a budget cut leaves the least-played rows cold.
WALK_ORDER = "r.rotation_bin DESC, r.add_date DESC, r.id ASC"

# What a row's answer is computed from: its lookup text, its album link and both release ids.
# quote_nullable keeps NULL distinct from the text 'NULL' and escapes separators, so different
# inputs never share a fingerprint. Needs ``r`` (rotation) and ``li`` (its library_identity).
INPUTS_FINGERPRINT = (
    "md5(concat_ws(',', quote_nullable(r.artist_name), quote_nullable(r.album_title),"
    " quote_nullable(r.album_id), quote_nullable(r.discogs_release_id), quote_nullable(li.discogs_release_id)))"
)

# upstream-reference.md §2.3 (getRotationFromDB): one row per (album, bin). Unlinked rows are
# grouped by a strictly negative hash of their (artist, album) snapshot, so they never collide with
# a real album id; within a group the newest rotation row wins, then the lowest id.
_PARTITION_KEY = (
    "COALESCE(r.album_id::bigint, -(abs(hashtext(lower(coalesce(r.artist_name, '')) || '|' ||"
    " lower(coalesce(r.album_title, '')))::bigint) + 1))"
)

IDENTITY_FIELDS = (
    "discogs_artist_id",
    "musicbrainz_artist_id",
    "wikidata_qid",
    "spotify_artist_id",
    "apple_music_artist_id",
    "bandcamp_id",
)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A persisted row answer that is valid now (its inputs match the station row, not expired)."""

    rotation_id: int
    inputs: str
    outcome: str
    release_id: int | None
    tracks: str | None  # the inline tracklist as served (JSON text)
    ttl_s: float
    seq: int


@dataclass(frozen=True, slots=True)
class PickerRow:
    """What the resolver needs about one rotation row (tiers 1 and 2 in one query).

    Attributes:
        inputs: fingerprint of the inputs (:data:`INPUTS_FINGERPRINT`); an answer is stored only
            with the inputs it was computed from.
        active: whether the row is in rotation now (only active rows are persisted and walked).
        stamp_trusted: whether a negative stamp on the row counts: this service stored nothing for
            the row (the stamp predates it), or stored a negative for the row's current inputs. A
            stamp written before the row's inputs changed no longer counts.
        stored: the persisted answer when it is still valid (a cache miss then costs no LML call).
    """

    rotation_id: int
    direct_release_id: int | None
    identity_release_id: int | None
    artist_name: str | None
    album_title: str | None
    lookup_attempted_at: dt.datetime | None
    inputs: str
    active: bool
    stamp_trusted: bool = True
    stored: StoredRow | None = None


def _picker_row(r: asyncpg.Record) -> PickerRow:
    stored = None
    if r["answer_inputs"] == r["inputs"] and r["answer_ttl_s"] > 0 and r["answer_outcome"] != RETRY_OUTCOME:
        stored = StoredRow(
            r["id"], r["inputs"], r["answer_outcome"], r["answer_release_id"], r["answer_tracks"],
            r["answer_ttl_s"], r["answer_seq"],
        )  # fmt: skip
    return PickerRow(
        rotation_id=r["id"],
        direct_release_id=r["direct"],
        identity_release_id=r["fallback"],
        artist_name=r["artist_name"],
        album_title=r["album_title"],
        lookup_attempted_at=r["tracklist_lookup_attempted_at"],
        inputs=r["inputs"],
        active=r["active"],
        stamp_trusted=r["stamp_trusted"],
        stored=stored,
    )


def _iso(value: dt.date | None) -> str | None:
    """Dates as ``YYYY-MM-DD``; timestamps in UTC with milliseconds, as the TypeScript backend sends them."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.isoformat()


def _list_item(r: asyncpg.Record) -> dict[str, Any]:
    identity = {name: r[name] for name in IDENTITY_FIELDS}
    return {
        "id": r["id"],
        "code_letters": r["code_letters"],
        "code_artist_number": r["code_artist_number"],
        "code_number": r["code_number"],
        "artist_name": r["artist_name"],
        "alphabetical_name": r["alphabetical_name"],
        "album_title": r["album_title"],
        "record_label": r["record_label"],
        "label_id": r["label_id"],
        "genre_name": r["genre_name"],
        "format_name": r["format_name"],
        "rotation_id": r["rotation_id"],
        "add_date": _iso(r["add_date"]),
        "rotation_add_date": _iso(r["rotation_add_date"]),
        "rotation_bin": r["rotation_bin"],
        "rotation_kill_date": _iso(r["rotation_kill_date"]),
        "plays": r["plays"],
        "legacy_release_id": r["legacy_release_id"],
        "reconciled_identity": identity if any(v is not None for v in identity.values()) else None,
    }


class RotationRepository:
    """Query functions over the station's ``rotation`` and its neighbours.

    Args:
        pool: the worker's asyncpg pool.
        schemas: the station and service schema names.
    """

    def __init__(self, pool: asyncpg.Pool, schemas: Schemas) -> None:
        self._pool = pool
        s, svc = schemas.station, schemas.service
        self._list_sql = f"""
            SELECT DISTINCT ON ({_PARTITION_KEY}, r.rotation_bin)
                   l.id AS id, a.code_letters, x.artist_genre_code AS code_artist_number, l.code_number,
                   COALESCE(a.artist_name, r.artist_name) AS artist_name,
                   COALESCE(a.alphabetical_name, r.artist_name) AS alphabetical_name,
                   COALESCE(l.album_title, r.album_title) AS album_title,
                   COALESCE(l.label, r.record_label) AS record_label,
                   l.label_id, g.genre_name, f.format_name, r.id AS rotation_id,
                   l.add_date AS add_date, r.add_date AS rotation_add_date, r.rotation_bin::text AS rotation_bin,
                   r.kill_date AS rotation_kill_date, l.plays, l.legacy_release_id,
                   {", ".join(f"a.{name}" for name in IDENTITY_FIELDS)}
            FROM {s}.rotation r
            LEFT JOIN {s}.library l ON l.id = r.album_id
            LEFT JOIN {s}.artists a ON a.id = l.artist_id
            LEFT JOIN {s}.format f ON f.id = l.format_id
            LEFT JOIN {s}.genres g ON g.id = l.genre_id
            LEFT JOIN {s}.genre_artist_crossreference x ON x.artist_id = l.artist_id AND x.genre_id = l.genre_id
            WHERE {ACTIVE_ROTATION}
            ORDER BY {_PARTITION_KEY}, r.rotation_bin, r.add_date DESC, r.id ASC
        """
        self._row_sql = f"""
            SELECT r.id, r.discogs_release_id AS direct, li.discogs_release_id AS fallback,
                   r.artist_name, r.album_title, r.tracklist_lookup_attempted_at,
                   {INPUTS_FINGERPRINT} AS inputs, {ACTIVE_ROTATION} AS active, ans.inputs AS answer_inputs,
                   ans.outcome AS answer_outcome, ans.release_id AS answer_release_id, ans.tracks AS answer_tracks,
                   ans.seq AS answer_seq, extract(epoch FROM ans.expires_at - now())::float8 AS answer_ttl_s,
                   (ans.rotation_id IS NULL
                    OR (ans.outcome IN ('lml_negative', 'stamp_skip') AND ans.inputs = {INPUTS_FINGERPRINT}))
                     AS stamp_trusted
            FROM {s}.rotation r
            LEFT JOIN {s}.library_identity li ON li.library_id = r.album_id
            LEFT JOIN {svc}.row_answer ans ON ans.rotation_id = r.id
        """
        self._due_sql = f"""
            SELECT r.id
            FROM {s}.rotation r
            LEFT JOIN {s}.library_identity li ON li.library_id = r.album_id
            LEFT JOIN {svc}.row_answer ans ON ans.rotation_id = r.id
            WHERE {ACTIVE_ROTATION}
              AND (ans.rotation_id IS NULL OR ans.inputs <> {INPUTS_FINGERPRINT}
                   OR ans.expires_at < CASE WHEN ans.outcome = '{RETRY_OUTCOME}' THEN now() ELSE $1 END)
              AND (cardinality($2::int[]) = 0 OR r.id = any($2::int[]))
              AND (NOT $3 OR ans.outcome = '{RETRY_OUTCOME}')
            ORDER BY {WALK_ORDER}
        """
        self._inputs_sql = f"""
            SELECT r.id, {INPUTS_FINGERPRINT} AS inputs
            FROM {s}.rotation r
            LEFT JOIN {s}.library_identity li ON li.library_id = r.album_id
            WHERE r.id = any($1::int[])
        """
        self._active_count_sql = f"SELECT count(*) FROM {s}.rotation r WHERE {ACTIVE_ROTATION}"
        self._by_album_sql = f"SELECT r.id FROM {s}.rotation r WHERE r.album_id = any($1::int[])"
        self._stamp_sql = f"UPDATE {s}.rotation SET tracklist_lookup_attempted_at = now() WHERE id = $1"
        self._unstamp_sql = (
            f"UPDATE {s}.rotation SET tracklist_lookup_attempted_at = NULL"
            " WHERE id = $1 AND tracklist_lookup_attempted_at IS NOT NULL"
        )
        # The 'track' literal stays inline so the partial index flowsheet_track_add_time_idx matches.
        self._live_sql = f"""
            SELECT 1 FROM {s}.flowsheet
            WHERE entry_type = 'track' AND add_time > now() - (interval '1 second' * $1)
            LIMIT 1
        """

    async def list_active(self) -> list[dict[str, Any]]:
        """The rotation list exactly as upstream answers it (station.md §2)."""
        return [_list_item(r) for r in await self._pool.fetch(self._list_sql)]

    async def due_rows(
        self, *, refresh_before: dt.datetime, only: list[int] | None = None, retries_only: bool = False
    ) -> list[int]:
        """Active rows, in walk order, whose stored answer is missing, stale or expires before ``refresh_before``.

        A row waiting for a retry is due once its retry time has come (never earlier).

        Args:
            refresh_before: answers expiring before this need refreshing.
            only: restrict to these rotation ids (changed rows); None means every row.
            retries_only: only rows whose retry is due.
        """
        rows = await self._pool.fetch(self._due_sql, refresh_before, only or [], retries_only)
        return [r["id"] for r in rows]

    async def active_count(self) -> int:
        count: int = await self._pool.fetchval(self._active_count_sql)
        return count

    async def picker_row(self, rotation_id: int) -> PickerRow | None:
        """Tier 1, tier 2, the lookup text, the stamp and the inputs of one row, or None when absent."""
        r = await self._pool.fetchrow(f"{self._row_sql} WHERE r.id = $1", rotation_id)
        return None if r is None else _picker_row(r)

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]:
        """The same for many rows in one query (the walk prefetches its next rows)."""
        rows = await self._pool.fetch(f"{self._row_sql} WHERE r.id = any($1::int[])", rotation_ids)
        return {r["id"]: _picker_row(r) for r in rows}

    async def current_inputs(self, rotation_ids: list[int]) -> dict[int, str]:
        """Rotation id -> inputs fingerprint now; ids that no longer exist are absent."""
        rows = await self._pool.fetch(self._inputs_sql, rotation_ids)
        return {r["id"]: r["inputs"] for r in rows}

    async def rows_of_albums(self, library_ids: list[int]) -> list[int]:
        """Rotation rows linked to these library rows (a library_identity change affects them)."""
        return [r["id"] for r in await self._pool.fetch(self._by_album_sql, library_ids)]

    async def stamp_lookup_attempted(self, rotation_id: int) -> None:
        """Record a confirmed tier-3 miss so restarts and the walk skip the row for 7 days."""
        await self._write_stamp(self._stamp_sql, rotation_id)

    async def clear_lookup_stamp(self, rotation_id: int) -> None:
        """Drop a negative stamp once LML matched the row (its inputs changed since the miss)."""
        await self._write_stamp(self._unstamp_sql, rotation_id)

    async def _write_stamp(self, sql: str, rotation_id: int) -> None:
        # A station statement trigger (touch_library_watermark_from_rotation) updates one shared
        # watermark row on every rotation UPDATE; a long station job can hold that row. Never let
        # a DJ's request wait on it: give up after STAMP_LOCK_TIMEOUT (the stamp is best effort).
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{STAMP_LOCK_TIMEOUT}'")
            await conn.execute(sql, rotation_id)

    async def live_activity(self, lookback_s: int) -> bool:
        """Whether a DJ logged a track in the last ``lookback_s`` seconds (0 disables the probe)."""
        if lookback_s <= 0:
            return False
        return await self._pool.fetchval(self._live_sql, lookback_s) is not None
