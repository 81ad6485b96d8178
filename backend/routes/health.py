"""Liveness and readiness (the org's health contract)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import asyncpg
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from backend.context import App
from backend.db.errors import DATABASE_ERRORS
from backend.db.gate import SchemaState, check_schema
from backend.db.walker import WalkerStatusStore
from backend.routes.edge import add_get

bp = Blueprint("health", url_prefix="/health")

DB_PROBE_TIMEOUT_S = 2.0
SCHEMA_RECHECK_S = 10.0


async def probe_database(pool: asyncpg.Pool) -> str:
    """``ok``, ``timeout`` or ``unavailable`` for a ``SELECT 1`` under its own timeout."""
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), DB_PROBE_TIMEOUT_S)
    except asyncio.TimeoutError:
        return "timeout"
    except DATABASE_ERRORS:
        return "unavailable"
    return "ok"


async def probe_schema(app: App) -> SchemaState:
    """The schema state, re-read at most every ``SCHEMA_RECHECK_S`` (until it is ok, then rarely)."""
    ctx = app.ctx
    cached: tuple[float, SchemaState] | None = getattr(ctx, "schema_probe", None)
    if cached is not None and time.monotonic() - cached[0] < SCHEMA_RECHECK_S:
        return cached[1]
    try:
        async with ctx.pool.acquire(timeout=DB_PROBE_TIMEOUT_S) as conn:
            state = await asyncio.wait_for(check_schema(conn, ctx.settings.schemas), DB_PROBE_TIMEOUT_S)  # type: ignore[arg-type]
    except DATABASE_ERRORS as exc:
        state = SchemaState("unavailable", f"database unavailable: {exc!r}")
    ctx.schema_probe = (time.monotonic(), state)
    return state


async def warm_status(app: App) -> dict[str, Any]:
    """The fleet walker's published status and this worker's own load state."""
    ctx = app.ctx
    try:
        walker = await asyncio.wait_for(WalkerStatusStore(ctx.pool, ctx.settings.schemas).read(), DB_PROBE_TIMEOUT_S)
    except DATABASE_ERRORS:
        walker = None
    try:
        size = await asyncio.wait_for(ctx.services.answers.size(), DB_PROBE_TIMEOUT_S)
        stored: dict[str, Any] | None = {
            "rows": size.rows,
            "releases": size.releases,
            "retrying": size.retrying,
            "bytes": size.bytes,
        }
    except DATABASE_ERRORS:
        stored = None
    return {"walker": walker, "worker": ctx.follower.status(), "stored": stored}


async def liveness(request: Request) -> HTTPResponse:
    """Cheap liveness: touches no dependency."""
    return json({"status": "ok"})


async def readiness(request: Request) -> HTTPResponse:
    """Database, schema and LML, concurrently; 503 when the database or schema is not ready, or while draining."""
    app = cast(App, request.app)
    ctx = app.ctx
    database, lml = await asyncio.gather(probe_database(ctx.pool), ctx.services.lml.ping())
    schema = await probe_schema(app) if database == "ok" else SchemaState("unavailable", "database unavailable")
    draining = bool(getattr(ctx, "draining", False))
    if draining or database != "ok" or not schema.ok:
        status = "unhealthy"
    elif lml != "ok":
        status = "degraded"
    else:
        status = "healthy"
    body = {
        "status": status,
        "draining": draining,
        "services": {"database": database, "schema": schema.status, "lml": lml, "auth": ctx.auth.mode},
        "schema": schema.line,
        "worker": ctx.worker,
        "caches": ctx.services.caches.stats(),
        "limiter": ctx.services.lml.limiter.snapshot(),
        "auth": ctx.auth.stats(),
        "warm": await warm_status(app),
    }
    return json(body, status=503 if status == "unhealthy" else 200)


add_get(bp, "/", liveness, cors=False)
add_get(bp, "/ready", readiness, cors=False)
