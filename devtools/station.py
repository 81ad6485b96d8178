"""Build the station's tables in an empty database from the faithful fixture (development and tests only).

In production the station's own migrations built them; the service only checks and adopts them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from backend.db.schemas import Schemas

FIXTURE = Path(__file__).with_name("station_schema.sql")

# Every table the fixture creates, children first (emptied in this order by tests and benchmarks).
TABLES = (
    "flowsheet",
    "rotation",
    "rotation_cards",
    "library_identity",
    "library",
    "genre_artist_crossreference",
    "labels",
    "format",
    "genres",
    "artists",
)


async def create_station_schema(conn: asyncpg.Connection[Any], schemas: Schemas) -> None:
    """Create the station schema, its types, tables, triggers and cdc machinery."""
    await conn.execute(schemas.render(FIXTURE.read_text(encoding="utf-8")))


async def station_schema_exists(conn: asyncpg.Connection[Any], schemas: Schemas) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schemas.station}.rotation"))


async def empty_station_tables(conn: asyncpg.Connection[Any], schemas: Schemas) -> None:
    """Remove every station row and restart the ids (tests and benchmarks).

    DELETE with the tables' triggers off (``session_replication_role = replica``, a superuser's right)
    takes a third of TRUNCATE's time on tables this small; without that right, TRUNCATE.
    """
    s = schemas.station
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(";".join(f"DELETE FROM {s}.{table}" for table in TABLES))
            await conn.execute(
                """SELECT setval(format('%I.%I', n.nspname, c.relname), q.seqstart, false)
                   FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = $1""",
                s,
            )
    except asyncpg.InsufficientPrivilegeError:
        tables = ", ".join(f"{s}.{table}" for table in TABLES)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
