"""Versioned SQL migrations, applied once under a PostgreSQL advisory lock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every host running migrations.
_LOCK_KEY = 0x726F7461  # "rota"


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def load_migrations() -> list[Migration]:
    """Return the packaged ``migrations/NNNN_name.sql`` files in version order."""
    folder = resources.files("backend.db").joinpath("migrations")
    files = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text(encoding="utf-8")) for f in files]


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply every pending migration; safe to run twice and from two hosts at once.

    Each migration runs in its own transaction together with the row that records it, and the whole
    run holds a session advisory lock, so a concurrent runner waits and then finds nothing to do.

    Returns:
        The versions applied by this call (empty when the schema was already current).
    """
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS wxyc_schema;
            CREATE TABLE IF NOT EXISTS wxyc_schema.schema_migrations (
                version    text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM wxyc_schema.schema_migrations")}
        for migration in load_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO wxyc_schema.schema_migrations (version) VALUES ($1)", migration.version)
            applied.append(migration.version)
            logger.info("migration applied version=%s", migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


async def migrate(database_url: str) -> list[str]:
    """Connect to ``database_url`` and apply pending migrations."""
    conn = await asyncpg.connect(database_url)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()
