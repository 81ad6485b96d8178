"""Liveness and readiness (the org's health contract)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

bp = Blueprint("health", url_prefix="/health")

DB_PROBE_TIMEOUT_S = 2.0


async def probe_database(pool: asyncpg.Pool) -> str:
    """``ok``, ``timeout`` or ``unavailable`` for a ``SELECT 1`` under its own timeout."""
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), DB_PROBE_TIMEOUT_S)
    except asyncio.TimeoutError:
        return "timeout"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return "unavailable"
    return "ok"


async def warm_status(ctx: Any) -> dict[str, Any]:
    """The host walk's state (when the main process walks) and this worker's load state."""
    follower = ctx.warm_follower
    if follower is None:
        local = ctx.warm_state.to_json()
        return {**local, "mode": "local", "worker": {"mode": "local"}}
    host = await asyncio.get_running_loop().run_in_executor(None, follower.host_status)
    return {**host, "mode": "host", "worker": follower.status()}


@bp.get("/")
async def liveness(request: Request) -> HTTPResponse:
    """Cheap liveness: touches no dependency."""
    return json({"status": "ok"})


@bp.get("/ready")
async def readiness(request: Request) -> HTTPResponse:
    """Probe the database and LML concurrently; 503 only when the database is down."""
    ctx = request.app.ctx
    database, lml = await asyncio.gather(probe_database(ctx.pool), ctx.lml.ping())
    if database != "ok":
        status = "unhealthy"
    elif lml != "ok":
        status = "degraded"
    else:
        status = "healthy"
    body = {
        "status": status,
        "services": {"database": database, "lml": lml},
        "worker": ctx.worker,
        "caches": {"rotation": ctx.resolver.stats(), "release": ctx.releases.stats()},
        "limiter": ctx.lml.limiter.snapshot(),
        "warm": await warm_status(ctx),
    }
    return json(body, status=503 if status == "unhealthy" else 200)
