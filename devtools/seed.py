"""Insert a demo catalog into the station tables (artists, genres, format, library, identities, rotation)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from backend.db.schemas import Schemas
from devtools.demo_catalog import DemoCatalog

logger = logging.getLogger(__name__)

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
_EXTERNAL_IDS = (
    "discogs_artist_id",
    "musicbrainz_artist_id",
    "wikidata_qid",
    "spotify_artist_id",
    "apple_music_artist_id",
    "bandcamp_id",
)


def _noon_utc(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12, 0), tzinfo=datetime.timezone.utc)


async def _reserve_ids(conn: asyncpg.Connection[Any], table: str, count: int) -> list[int]:
    """Draw ``count`` ids from ``table``'s own serial sequence, so rows can reference each other."""
    rows = await conn.fetch(
        "SELECT nextval(pg_get_serial_sequence($1, 'id')) AS id FROM generate_series(1, $2)", table, count
    )
    return [r["id"] for r in rows]


async def _copy(
    conn: asyncpg.Connection[Any], schema: str, table: str, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> None:
    if records:
        await conn.copy_records_to_table(table, schema_name=schema, columns=list(columns), records=records)


async def seed_demo(
    conn: asyncpg.Connection[Any], catalog: DemoCatalog, schemas: Schemas, *, only_if_empty: bool = True
) -> int:
    """Insert the catalog in one transaction; rotation ids follow catalog order on a fresh database.

    Args:
        conn: an open connection; the station tables must exist.
        catalog: the demo catalog to insert.
        schemas: where the station tables are.
        only_if_empty: when True and ``rotation`` already has rows, write nothing.

    Returns:
        The number of rotation rows inserted (0 when skipped).
    """
    s = schemas.station
    async with conn.transaction():
        # Serialise concurrent seeders (several processes booting at once) before the emptiness check.
        await conn.execute(f"LOCK TABLE {s}.rotation IN SHARE ROW EXCLUSIVE MODE")
        if only_if_empty and await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {s}.rotation)"):
            logger.info("demo seed skipped: %s.rotation already has rows", s)
            return 0
        albums = catalog.albums
        genre_names = sorted({a.genre for a in albums})
        format_names = sorted({a.format for a in albums})
        artist_names = list(dict.fromkeys(a.artist_name for a in albums))
        genre_ids = dict(zip(genre_names, await _reserve_ids(conn, f"{s}.genres", len(genre_names)), strict=True))
        format_ids = dict(zip(format_names, await _reserve_ids(conn, f"{s}.format", len(format_names)), strict=True))
        artist_ids = dict(zip(artist_names, await _reserve_ids(conn, f"{s}.artists", len(artist_names)), strict=True))
        album_ids = await _reserve_ids(conn, f"{s}.library", len(albums))
        first = {a.artist_name: a for a in reversed(albums)}  # the artist row's data comes from its first album

        await _copy(conn, s, "genres", ("id", "genre_name"), [(genre_ids[g], g) for g in genre_names])
        await _copy(conn, s, "format", ("id", "format_name"), [(format_ids[f], f) for f in format_names])
        artists = []
        for name in artist_names:
            album = first[name]
            ids = album.artist_ids
            external = tuple(getattr(ids, field) if ids else None for field in _EXTERNAL_IDS)
            artists.append((artist_ids[name], name, album.alphabetical_name or name, album.code_letters, *external))
        await _copy(
            conn, s, "artists", ("id", "artist_name", "alphabetical_name", "code_letters", *_EXTERNAL_IDS), artists
        )
        codes = {(artist_ids[a.artist_name], genre_ids[a.genre]): a.artist_genre_code for a in albums}
        await _copy(
            conn,
            s,
            "genre_artist_crossreference",
            ("artist_id", "genre_id", "artist_genre_code"),
            [(artist, genre, code) for (artist, genre), code in codes.items()],
        )
        library = [
            (album_ids[i], artist_ids[a.artist_name], genre_ids[a.genre], format_ids[a.format], a.album_title,
             a.label, a.code_number, a.plays, _noon_utc(a.add_date), a.artist_name)
            for i, a in enumerate(albums)
        ]  # fmt: skip
        await _copy(
            conn,
            s,
            "library",
            ("id", "artist_id", "genre_id", "format_id", "album_title", "label", "code_number", "plays", "add_date",
             "artist_name"),
            library,
        )  # fmt: skip
        identities = [
            (album_ids[i], a.identity.discogs_release_id, _noon_utc(a.add_date), a.identity.method,
             a.identity.confidence)
            for i, a in enumerate(albums)
            if a.identity is not None
        ]  # fmt: skip
        await _copy(
            conn,
            s,
            "library_identity",
            ("library_id", "discogs_release_id", "last_verified_at", "method", "confidence"),
            identities,
        )
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
        await _copy(conn, s, "rotation", _ROTATION_COLUMNS, rotation)
    logger.info(
        "demo seed inserted %d library albums, %d identities, %d rotation rows (%d active)",
        len(library),
        len(identities),
        len(rotation),
        len(catalog.active_rows()),
    )
    return len(rotation)
