"""Small helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from backend.db.schemas import Schemas
from devtools.demo_catalog import DemoCatalog

SCHEMAS = Schemas()


def row_id(catalog: DemoCatalog, outcome: str, n: int = 0, *, active: bool = True) -> int:
    """The rotation id of the n-th catalog row designed for ``outcome`` (rotation id = catalog index + 1)."""
    rows = [
        i + 1
        for i, r in enumerate(catalog.rotation)
        if r.expected == outcome and r.is_active(catalog.today) == active and r.duplicate is None
    ]
    return rows[n]


async def insert_rotation(conn: asyncpg.Connection, schemas: Schemas = SCHEMAS, **values: Any) -> int:
    """Insert a station rotation row with only the given columns (the fixture's defaults do the rest)."""
    values.setdefault("rotation_bin", "M")
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    rid: int = await conn.fetchval(
        f"INSERT INTO {schemas.station}.rotation ({columns}) VALUES ({params}) RETURNING id", *values.values()
    )
    return rid


async def insert_album(
    conn: asyncpg.Connection,
    schemas: Schemas = SCHEMAS,
    *,
    title: str = "An Album",
    artist: str = "An Artist",
    genre: str = "Rock",
    format_name: str = "CD",
    identity_release_id: int | None = None,
    with_identity: bool = False,
) -> int:
    """Insert a station library row (with its artist, genre and format) and optionally its identity; return its id."""
    s = schemas.station
    artist_id = await conn.fetchval(
        f"INSERT INTO {s}.artists (artist_name, alphabetical_name, code_letters) VALUES ($1, $1, 'AA') RETURNING id",
        artist,
    )
    genre_id = await conn.fetchval(f"INSERT INTO {s}.genres (genre_name) VALUES ($1) RETURNING id", genre)
    format_id = await conn.fetchval(f"INSERT INTO {s}.format (format_name) VALUES ($1) RETURNING id", format_name)
    album: int = await conn.fetchval(
        f"""INSERT INTO {s}.library (artist_id, genre_id, format_id, album_title, code_number)
            VALUES ($1, $2, $3, $4, 1) RETURNING id""",
        artist_id,
        genre_id,
        format_id,
        title,
    )
    if with_identity or identity_release_id is not None:
        await conn.execute(
            f"""INSERT INTO {s}.library_identity (library_id, discogs_release_id, last_verified_at, method, confidence)
                VALUES ($1, $2, $3, 'manual', 1.0)""",
            album,
            identity_release_id,
            dt.datetime.now(dt.timezone.utc),
        )
    return album


def _release_tracks(catalog: DemoCatalog, release_id: int) -> list[dict[str, Any]]:
    release = catalog.releases.get(release_id)
    if release is None:
        return []  # LML answers 404
    return [
        {
            "position": t.position,
            "title": t.title,
            "duration": t.duration,
            "artists": list(t.artists) or [release.artist],
        }
        for t in release.tracklist
    ]


def expected_tracks(catalog: DemoCatalog, rotation_id: int) -> list[dict[str, Any]]:
    """What the picker must answer for a demo row: the oracle, from the catalog's design alone."""
    from backend.services.lookup_coordinator import lookup_key
    from devtools import demo_catalog as dc

    row = catalog.rotation[rotation_id - 1]
    if row.discogs_release_id is not None:
        return _release_tracks(catalog, row.discogs_release_id)
    album = catalog.albums[row.album_index] if row.album_index is not None else None
    if album is not None and album.identity is not None and album.identity.discogs_release_id:
        return _release_tracks(catalog, album.identity.discogs_release_id)
    if row.expected in (dc.STAMP_FRESH, dc.NO_TEXT) or not row.artist_name or not row.album_title:
        return []
    artist = None if dc.is_various_artists_name(row.artist_name) else row.artist_name
    fixture = catalog.lookups.get(lookup_key(artist, row.album_title))
    if fixture is None or fixture.search_type != "direct" or not fixture.results or fixture.timeout:
        return []
    artwork = fixture.results[0].artwork
    if fixture.tracklist:
        return [
            {
                "position": t.position,
                "title": t.title,
                "duration": t.duration,
                "artists": list(t.artists) or [row.artist_name],
            }
            for t in fixture.tracklist
        ]
    if artwork is not None and artwork.release_id > 0:
        return _release_tracks(catalog, artwork.release_id)
    return []


def active_ids(catalog: DemoCatalog) -> list[int]:
    """Rotation ids of the catalog's active rows (rotation id = catalog index + 1)."""
    return [i + 1 for i, r in enumerate(catalog.rotation) if r.is_active(catalog.today)]


def tier3_keys(catalog: DemoCatalog, *, transient: bool | None = None) -> set[tuple[str, str]]:
    """Lookup keys of active rows whose resolution asks LML (``transient``: only those LML answers
    with timeout/degraded, or only the others; None: all)."""
    from devtools import demo_catalog as dc

    keys = set()
    for row in catalog.rotation:
        if not row.is_active(catalog.today) or row.lml_key is None or row.discogs_release_id is not None:
            continue
        album = catalog.albums[row.album_index] if row.album_index is not None else None
        if album is not None and album.identity is not None and album.identity.discogs_release_id:
            continue
        if row.expected == dc.STAMP_FRESH:
            continue
        is_transient = row.expected in (dc.LML_TIMEOUT, dc.LML_DEGRADED)
        if transient is None or transient == is_transient:
            keys.add(row.lml_key)
    return keys


def transient_ids(catalog: DemoCatalog) -> set[int]:
    """Active rows LML answers with timeout/degraded: never cached, so every open asks LML again."""
    from devtools import demo_catalog as dc

    return {i + 1 for i, r in enumerate(catalog.rotation)
            if r.is_active(catalog.today) and r.expected in (dc.LML_TIMEOUT, dc.LML_DEGRADED)}  # fmt: skip


def warm_misses(stats: dict[str, Any], catalog: DemoCatalog) -> tuple[list[tuple[str, str]], list[int]]:
    """The LML calls in the fake's ``stats`` that a warm host should not have made: every release fetch, and
    every lookup but those of transient rows (never cached; the walker retries them on its own schedule)."""
    retried = tier3_keys(catalog, transient=True)
    lookups = [(k[0], k[1]) for k in stats["lookup_keys"] if (k[0], k[1]) not in retried]
    return lookups, list(stats["release_ids"])
