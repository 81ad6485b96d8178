"""What the service needs of the station's schema, and a check that the database has it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from backend.db.schemas import Schemas

# Column kinds the service can work with; each maps to the PostgreSQL types that are compatible.
_KINDS: Mapping[str, frozenset[str]] = {
    "int": frozenset({"int2", "int4", "int8"}),
    "text": frozenset({"varchar", "text", "bpchar"}),
    "date": frozenset({"date"}),
    "timestamptz": frozenset({"timestamptz"}),
    "freq_enum": frozenset({"freq_enum"}),
    "flowsheet_entry_type": frozenset({"flowsheet_entry_type"}),
}

# Every station table and column the service reads (and the one it writes: the negative stamp).
REQUIRED_COLUMNS: Mapping[str, Mapping[str, str]] = {
    "rotation": {
        "id": "int",
        "album_id": "int",
        "rotation_bin": "freq_enum",
        "add_date": "date",
        "kill_date": "date",
        "artist_name": "text",
        "album_title": "text",
        "record_label": "text",
        "discogs_release_id": "int",
        "tracklist_lookup_attempted_at": "timestamptz",
    },
    "library": {
        "id": "int",
        "artist_id": "int",
        "genre_id": "int",
        "format_id": "int",
        "album_title": "text",
        "label": "text",
        "label_id": "int",
        "code_number": "int",
        "plays": "int",
        "legacy_release_id": "int",
        "add_date": "timestamptz",
    },
    "artists": {
        "id": "int",
        "artist_name": "text",
        "code_letters": "text",
        "alphabetical_name": "text",
        "discogs_artist_id": "int",
        "musicbrainz_artist_id": "text",
        "wikidata_qid": "text",
        "spotify_artist_id": "text",
        "apple_music_artist_id": "text",
        "bandcamp_id": "text",
    },
    "genres": {"id": "int", "genre_name": "text"},
    "format": {"id": "int", "format_name": "text"},
    "genre_artist_crossreference": {"artist_id": "int", "genre_id": "int", "artist_genre_code": "int"},
    "library_identity": {"library_id": "int", "discogs_release_id": "int"},
    "flowsheet": {"entry_type": "flowsheet_entry_type", "add_time": "timestamptz"},
}


@dataclass(frozen=True)
class StationCheck:
    """The result of :func:`check_station_schema`: empty ``problems`` means compatible."""

    schema: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """One line for logs, the CLI and readiness."""
        if self.ok:
            return f"station schema {self.schema} is compatible"
        return f"station schema {self.schema} is incompatible: {'; '.join(self.problems)}"


async def check_station_schema(conn: asyncpg.Connection, schemas: Schemas) -> StationCheck:
    """Compare the station schema with :data:`REQUIRED_COLUMNS` (reads the catalog only)."""
    rows = await conn.fetch(
        """
        SELECT c.table_name, c.column_name, c.udt_name
        FROM information_schema.columns c
        WHERE c.table_schema = $1 AND c.table_name = any($2::text[])
        """,
        schemas.station,
        list(REQUIRED_COLUMNS),
    )
    found: dict[str, dict[str, str]] = {}
    for r in rows:
        found.setdefault(r["table_name"], {})[r["column_name"]] = r["udt_name"]
    problems: list[str] = []
    for table, columns in REQUIRED_COLUMNS.items():
        actual = found.get(table)
        if actual is None:
            problems.append(f"missing table {table}")
            continue
        for column, kind in columns.items():
            udt = actual.get(column)
            if udt is None:
                problems.append(f"missing column {table}.{column}")
            elif udt not in _KINDS[kind]:
                problems.append(f"{table}.{column} is {udt} (expected {kind})")
    return StationCheck(schemas.station, tuple(problems))


# What the serving role must be allowed to do (README: "Deploying against the station").
READ_TABLES = tuple(REQUIRED_COLUMNS)
SERVICE_TABLES = ("row_answer", "release_answer", "lookup_answer", "lml_budget", "walker")
# Read only, to know whether the service schema is current.
SERVICE_READ_TABLES = ("schema_migrations",)
# Station tables that station triggers write when the stamp column is updated (the triggers run
# with the updating role's privileges): touch_library_watermark_from_rotation, on the current schema.
STAMP_SIDE_EFFECT_TABLES = ("library_watermark",)


class _RollbackError(Exception):
    """Raised to roll back a probe transaction."""


async def check_grants(conn: asyncpg.Connection, schemas: Schemas) -> tuple[str, ...]:
    """Privileges the connected role lacks to serve (empty when it has them all)."""
    missing: list[str] = []
    for table in READ_TABLES:
        if not await conn.fetchval("SELECT has_table_privilege($1, 'SELECT')", f"{schemas.station}.{table}"):
            missing.append(f"SELECT on {schemas.station}.{table}")
    stamp = await conn.fetchval(
        "SELECT has_column_privilege($1, 'tracklist_lookup_attempted_at', 'UPDATE')", f"{schemas.station}.rotation"
    )
    if not stamp:
        missing.append(f"UPDATE (tracklist_lookup_attempted_at) on {schemas.station}.rotation")
    else:
        # Statement triggers fire even for UPDATE 0: this proves the stamp write works, trigger side effects included.
        try:
            async with conn.transaction():
                await conn.execute(
                    f"UPDATE {schemas.station}.rotation SET tracklist_lookup_attempted_at = NULL WHERE false"
                )
                raise _RollbackError
        except _RollbackError:
            pass
        except asyncpg.InsufficientPrivilegeError as exc:
            missing.append(f"what station triggers write on a stamp update ({exc})")
    if not await conn.fetchval("SELECT has_schema_privilege($1, 'USAGE')", schemas.service):
        missing.append(f"USAGE on schema {schemas.service}")
        return tuple(missing)
    for table in SERVICE_READ_TABLES:
        if not await conn.fetchval("SELECT has_table_privilege($1, 'SELECT')", f"{schemas.service}.{table}"):
            missing.append(f"SELECT on {schemas.service}.{table}")
    for table in SERVICE_TABLES:
        qualified = f"{schemas.service}.{table}"
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            if not await conn.fetchval("SELECT has_table_privilege($1, $2)", qualified, privilege):
                missing.append(f"{privilege} on {qualified}")
    if not await conn.fetchval("SELECT has_sequence_privilege($1, 'USAGE')", f"{schemas.service}.answer_seq"):
        missing.append(f"USAGE on sequence {schemas.service}.answer_seq")
    return tuple(missing)
