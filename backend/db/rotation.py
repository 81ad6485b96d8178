"""Rotation queries: the active list, the walk order, the resolver's row, the stamp and the live probe."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

# The one definition of an "active" rotation row. Every query that needs it uses this constant.
# A kill date equal to today is already inactive (CURRENT_DATE in the session's time zone).
ACTIVE_ROTATION = "(r.kill_date IS NULL OR r.kill_date > CURRENT_DATE)"

# Heavy rotation first (H, M, L, S: the enum is declared S < L < M < H), newest first within a bin,
# so a budget cut leaves the least-played rows cold. The list endpoint shows rows in the same order.
WALK_ORDER = "r.rotation_bin DESC, r.add_date DESC, r.id ASC"


@dataclass(frozen=True, slots=True)
class PickerRow:
    """What the resolver needs about one rotation row (tiers 1 and 2 in one query)."""

    rotation_id: int
    direct_release_id: int | None
    identity_release_id: int | None
    artist_name: str | None
    album_title: str | None
    lookup_attempted_at: dt.datetime | None


_PICKER_ROW_SQL = """
    SELECT r.id, r.discogs_release_id AS direct, li.discogs_release_id AS fallback,
           r.artist_name, r.album_title, r.tracklist_lookup_attempted_at
    FROM wxyc_schema.rotation r
    LEFT JOIN wxyc_schema.library_identity li ON li.library_id = r.album_id
"""


def _picker_row(r: asyncpg.Record) -> PickerRow:
    return PickerRow(
        rotation_id=r["id"],
        direct_release_id=r["direct"],
        identity_release_id=r["fallback"],
        artist_name=r["artist_name"],
        album_title=r["album_title"],
        lookup_attempted_at=r["tracklist_lookup_attempted_at"],
    )


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


class RotationRepository:
    """Query functions over ``wxyc_schema.rotation`` and friends.

    Args:
        pool: the worker's asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list_active(self) -> list[dict[str, Any]]:
        """Return the active rows in the wire shape the DJ web app reads."""
        rows = await self._pool.fetch(
            f"""
            SELECT r.id AS rotation_id, l.id AS id,
                   COALESCE(l.artist_name, r.artist_name) AS artist_name,
                   COALESCE(l.album_title, r.album_title) AS album_title,
                   COALESCE(l.label, r.record_label) AS record_label,
                   r.rotation_bin::text AS rotation_bin, r.add_date, r.kill_date
            FROM wxyc_schema.rotation r
            LEFT JOIN wxyc_schema.library l ON l.id = r.album_id
            WHERE {ACTIVE_ROTATION}
            ORDER BY {WALK_ORDER}
            """
        )
        return [
            {
                "rotation_id": r["rotation_id"],
                "id": r["id"],
                "artist_name": r["artist_name"],
                "album_title": r["album_title"],
                "record_label": r["record_label"],
                "rotation_bin": r["rotation_bin"],
                "add_date": _iso(r["add_date"]),
                "kill_date": _iso(r["kill_date"]),
            }
            for r in rows
        ]

    async def active_ids_in_walk_order(self) -> list[int]:
        """Return the ids of the active rows, heavy rotation and newest first."""
        rows = await self._pool.fetch(
            f"SELECT r.id FROM wxyc_schema.rotation r WHERE {ACTIVE_ROTATION} ORDER BY {WALK_ORDER}"
        )
        return [r["id"] for r in rows]

    async def picker_row(self, rotation_id: int) -> PickerRow | None:
        """Return tier 1, tier 2, the lookup text and the stamp of one row, or None when absent."""
        r = await self._pool.fetchrow(f"{_PICKER_ROW_SQL} WHERE r.id = $1", rotation_id)
        return None if r is None else _picker_row(r)

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]:
        """The same for many rows in one query (the walk prefetches its next rows)."""
        rows = await self._pool.fetch(f"{_PICKER_ROW_SQL} WHERE r.id = any($1::int[])", rotation_ids)
        return {r["id"]: _picker_row(r) for r in rows}

    async def stamp_lookup_attempted(self, rotation_id: int) -> None:
        """Record a confirmed tier-3 miss so restarts and the warmer skip the row for 7 days."""
        await self._pool.execute(
            "UPDATE wxyc_schema.rotation SET tracklist_lookup_attempted_at = now() WHERE id = $1",
            rotation_id,
        )

    async def live_activity(self, lookback_s: int) -> bool:
        """Whether a DJ logged a track in the last ``lookback_s`` seconds (0 disables the probe)."""
        if lookback_s <= 0:
            return False
        # The 'track' literal stays inline so the partial index flowsheet_track_add_time_idx matches.
        row = await self._pool.fetchval(
            """
            SELECT 1 FROM wxyc_schema.flowsheet
            WHERE entry_type = 'track' AND add_time > now() - (interval '1 second' * $1)
            LIMIT 1
            """,
            lookback_s,
        )
        return row is not None
