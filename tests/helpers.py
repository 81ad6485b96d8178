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
