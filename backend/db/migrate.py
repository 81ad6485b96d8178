"""Versioned SQL migrations of the service's own schema, applied once under an advisory lock.

The station's schema is never created or altered here: it is checked (``backend.db.station``) and
adopted as it is. Each applied migration is recorded with the SHA-256 of its file, so an edited
migration that was already applied is an error instead of silent drift.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

from backend.db.schemas import Schemas
from backend.db.station import StationCheck, check_station_schema

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every host running migrations.
_LOCK_KEY = 0x726F7461  # "rota"


class MigrationError(Exception):
    """The database cannot be migrated as it is; the message says why in one line."""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str  # with the schema tokens, as in the file
    checksum: str

    def render(self, schemas: Schemas) -> str:
        return schemas.render(self.sql)


def load_migrations() -> list[Migration]:
    """Return the packaged ``migrations/NNNN_name.sql`` files in version order."""
    folder = resources.files("backend.db").joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    migrations = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode()).hexdigest()
        migrations.append(Migration(version=f.name.removesuffix(".sql"), sql=text, checksum=checksum))
    return migrations


async def applied_migrations(conn: asyncpg.Connection, schemas: Schemas) -> dict[str, str]:
    """Version -> recorded checksum; empty when the service schema does not exist yet."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schemas.service}.schema_migrations")
    if not exists:
        return {}
    rows = await conn.fetch(f"SELECT version, checksum FROM {schemas.service}.schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


def _check_history(applied: dict[str, str], known: list[Migration]) -> list[Migration]:
    """The pending migrations; raise when an applied one was edited or is unknown to this code."""
    by_version = {m.version: m for m in known}
    for version, checksum in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {version} is applied but unknown to this version of the service (a newer one ran here?)"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version} was edited after it was applied (checksum {checksum[:12]} in the database, "
                f"{migration.checksum[:12]} in the file); write a new migration instead"
            )
    return [m for m in known if m.version not in applied]


async def pending_migrations(conn: asyncpg.Connection, schemas: Schemas) -> list[str]:
    """Versions not yet applied (reads only; raises MigrationError on an edited history)."""
    return [m.version for m in _check_history(await applied_migrations(conn, schemas), load_migrations())]


async def require_station_schema(conn: asyncpg.Connection, schemas: Schemas) -> StationCheck:
    """Check the station schema; raise MigrationError with the one-line verdict when incompatible."""
    check = await check_station_schema(conn, schemas)
    if not check.ok:
        raise MigrationError(check.line())
    return check


async def apply_migrations(conn: asyncpg.Connection, schemas: Schemas) -> list[str]:
    """Check the station schema, then apply every pending migration of the service schema.

    Safe to run twice and from two hosts at once: the whole run holds a session advisory lock and
    each migration runs in one transaction with the row that records it.

    Returns:
        The versions applied by this call (empty when the schema was already current).

    Raises:
        MigrationError: the station schema is incompatible, the history was edited, or the role
            lacks a privilege a migration needs (the message names it).
    """
    await require_station_schema(conn, schemas)
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        pending = _check_history(await applied_migrations(conn, schemas), load_migrations())
        if not pending:
            return []
        try:
            await conn.execute(
                f"""
                CREATE SCHEMA IF NOT EXISTS {schemas.service};
                CREATE TABLE IF NOT EXISTS {schemas.service}.schema_migrations (
                    version    text PRIMARY KEY,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                );
                """
            )
            for migration in pending:
                async with conn.transaction():
                    await conn.execute(migration.render(schemas))
                    await conn.execute(
                        f"INSERT INTO {schemas.service}.schema_migrations (version, checksum) VALUES ($1, $2)",
                        migration.version,
                        migration.checksum,
                    )
                applied.append(migration.version)
                logger.info("migration applied version=%s schema=%s", migration.version, schemas.service)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise MigrationError(
                f"permission denied applying migrations to schema {schemas.service} ({exc}); "
                f"run `python -m backend migrate` as the owner of the {schemas.station} tables"
            ) from None
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


async def migrate(database_url: str, schemas: Schemas) -> list[str]:
    """Connect to ``database_url`` and apply pending migrations (see :func:`apply_migrations`)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await apply_migrations(conn, schemas)
    finally:
        await conn.close()
