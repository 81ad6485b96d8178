"""The asyncpg pool per worker; the schema check (and migrations) once per host at startup."""

from __future__ import annotations

import logging
import multiprocessing as mp

from backend.context import App
from backend.db.gate import SchemaState, ensure_schema
from backend.db.pool import close_pool, create_pool

logger = logging.getLogger(__name__)

# A station schema that lacks what the service reads, or an edited migration history, will not fix
# itself: refuse to start. A database that is down, or migrations the role may not apply, may:
# serve (readiness says unhealthy) and keep retrying in the background.
FATAL = ("incompatible", "invalid")


async def check_schema_at_start(app: App, where: str) -> SchemaState:
    settings = app.ctx.settings
    state = await ensure_schema(settings.database_url or "", settings.schemas, migrate=settings.migrate_on_start)
    app.ctx.schema_state = state
    if state.ok:
        logger.info("schema ready where=%s %s", where, state.line)
    elif state.status in FATAL:
        logger.error("%s", state.line)
    else:
        logger.warning("schema not ready where=%s status=%s %s; retrying in the background", where, state.status,
                       state.line)  # fmt: skip
    return state


def register(app: App) -> None:
    """Wire the pool and the startup schema check into ``app``."""

    @app.main_process_start
    async def check_schema_in_main_process(app: App) -> None:
        app.shared_ctx.has_main_process = mp.Value("b", 1)
        if not app.ctx.settings.database_url:
            raise SystemExit("DATABASE_URL is not set: point it at PostgreSQL, or run ./scripts/serve")
        state = await check_schema_at_start(app, "main_process")
        if state.status in FATAL:
            raise SystemExit(2)

    @app.before_server_start
    async def open_pool(app: App) -> None:
        if not hasattr(app.shared_ctx, "has_main_process") and app.ctx.settings.database_url:
            # Single-process mode and test clients have no main process: check here instead.
            await check_schema_at_start(app, "worker")
        app.ctx.pool = await create_pool(app.ctx.settings)

    @app.after_server_stop
    async def close(app: App) -> None:
        pool = getattr(app.ctx, "pool", None)
        if pool is not None:
            await close_pool(pool)
