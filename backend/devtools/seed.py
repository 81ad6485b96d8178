"""Insert the demo catalog into ``wxyc_schema`` (library, library_identity, rotation)."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import asyncpg

from backend.devtools.demo_catalog import DemoCatalog

logger = logging.getLogger(__name__)

_SCHEMA = "wxyc_schema"
_LIBRARY_COLUMNS = ("id", "artist_name", "album_title", "label", "add_date")
_IDENTITY_COLUMNS = ("library_id", "discogs_release_id", "last_verified_at", "method", "confidence")
_ROTATION_COLUMNS = (
    "album_id",
    "rotation_bin",
    "add_date",
    "kill_date",
    "artist_name",
    "album_title",
    "record_label",
    "discogs_release_id",
    "tracklist_lookup_attempted_at",
)


def _noon_utc(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12, 0), tzinfo=datetime.timezone.utc)


async def seed_demo(conn: asyncpg.Connection[Any], catalog: DemoCatalog, *, only_if_empty: bool = True) -> int:
    """Insert the catalog's library, library_identity and rotation rows in one transaction.

    Library ids are reserved from the table's own sequence first, so rotation rows can reference
    albums by catalog index; on a fresh database the rotation ids follow catalog order from 1.

    Args:
        conn: An open connection; the migrations must already have run.
        catalog: The demo catalog to insert.
        only_if_empty: When True and ``wxyc_schema.rotation`` already has rows, write nothing.

    Returns:
        The number of rotation rows inserted (0 when skipped).
    """
    async with conn.transaction():
        # Serialise concurrent seeders (several workers booting at once) before the emptiness check.
        await conn.execute("LOCK TABLE wxyc_schema.rotation IN SHARE ROW EXCLUSIVE MODE")
        if only_if_empty and await conn.fetchval("SELECT EXISTS (SELECT 1 FROM wxyc_schema.rotation)"):
            logger.info("demo seed skipped: wxyc_schema.rotation already has rows")
            return 0
        rows = await conn.fetch(
            "SELECT nextval(pg_get_serial_sequence('wxyc_schema.library', 'id')) AS id FROM generate_series(1, $1)",
            len(catalog.albums),
        )
        album_ids: list[int] = [r["id"] for r in rows]
        library = [
            (album_ids[i], a.artist_name, a.album_title, a.label, _noon_utc(a.add_date))
            for i, a in enumerate(catalog.albums)
        ]
        identities = [
            (album_ids[i], a.identity.discogs_release_id, _noon_utc(a.add_date), a.identity.method,
             a.identity.confidence)
            for i, a in enumerate(catalog.albums)
            if a.identity is not None
        ]  # fmt: skip
        rotation = [
            (
                album_ids[r.album_index] if r.album_index is not None else None,
                r.rotation_bin,
                r.add_date,
                r.kill_date,
                r.artist_name,
                r.album_title,
                r.record_label,
                r.discogs_release_id,
                r.tracklist_lookup_attempted_at,
            )
            for r in catalog.rotation
        ]
        await conn.copy_records_to_table("library", schema_name=_SCHEMA, columns=_LIBRARY_COLUMNS, records=library)
        await conn.copy_records_to_table(
            "library_identity", schema_name=_SCHEMA, columns=_IDENTITY_COLUMNS, records=identities
        )
        await conn.copy_records_to_table("rotation", schema_name=_SCHEMA, columns=_ROTATION_COLUMNS, records=rotation)
    logger.info(
        "demo seed inserted %d library albums, %d identities, %d rotation rows (%d active)",
        len(library),
        len(identities),
        len(rotation),
        len(catalog.active_rows()),
    )
    return len(rotation)
