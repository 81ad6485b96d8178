"""Is the database ready to serve? The station schema compatible, the service schema migrated."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from backend.db.migrate import MigrationError, apply_migrations, pending_migrations
from backend.db.schemas import Schemas
from backend.db.station import check_station_schema

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
_DOWN = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
         asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)  # fmt: skip


@dataclass(frozen=True)
class SchemaState:
    """``status``: ``ok``, ``unavailable`` (no database), ``pending`` (migrations to apply),
    ``incompatible`` (the station schema lacks something) or ``invalid`` (edited migration history)."""

    status: str
    line: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


async def check_schema(conn: asyncpg.Connection, schemas: Schemas) -> SchemaState:
    """Read-only: is the station compatible and the service schema current?"""
    station = await check_station_schema(conn, schemas)
    if not station.ok:
        return SchemaState("incompatible", station.line())
    try:
        pending = await pending_migrations(conn, schemas)
    except MigrationError as exc:
        return SchemaState("invalid", str(exc))
    if pending:
        return SchemaState(
            "pending",
            f"schema {schemas.service} lacks migrations {', '.join(pending)}: run `python -m backend migrate`",
        )
    return SchemaState("ok", f"station schema {schemas.station} compatible, schema {schemas.service} current")


async def ensure_schema(database_url: str, schemas: Schemas, *, migrate: bool) -> SchemaState:
    """Check the schemas, applying pending migrations when ``migrate`` (and the role may)."""
    try:
        conn = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    except (*_DOWN, asyncpg.PostgresError) as exc:
        return SchemaState("unavailable", f"database unavailable: {exc!r}")
    try:
        state = await check_schema(conn, schemas)
        if state.status == "pending" and migrate:
            try:
                applied = await apply_migrations(conn, schemas)
            except MigrationError as exc:
                return SchemaState("pending", str(exc))
            logger.info("migrations applied versions=%s schema=%s", ",".join(applied) or "-", schemas.service)
            state = await check_schema(conn, schemas)
        return state
    except _DOWN as exc:
        return SchemaState("unavailable", f"database unavailable: {exc!r}")
    finally:
        try:
            await asyncio.wait_for(conn.close(), 2)
        except (*_DOWN, asyncio.CancelledError):
            conn.terminate()
