"""The asyncpg pool per worker, and migrations once per host at startup."""

from __future__ import annotations

import logging
import multiprocessing as mp

import asyncpg

from backend.context import App
from backend.db.migrate import migrate
from backend.db.pool import close_pool, create_pool

logger = logging.getLogger(__name__)


async def _migrate_on_start(app: App, where: str) -> None:
    settings = app.ctx.settings
    if not settings.migrate_on_start or not settings.database_url:
        return
    try:
        applied = await migrate(settings.database_url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # A backend may boot before its database; serve (readiness says unhealthy) rather than die.
        logger.error("migrations not applied where=%s error=%r; run `python -m backend migrate`", where, exc)
        return
    logger.info("migrations checked where=%s applied=%d", where, len(applied))


def register(app: App) -> None:
    """Wire the pool and startup migrations into ``app``."""

    @app.main_process_start
    async def migrate_in_main_process(app: App) -> None:
        app.shared_ctx.has_main_process = mp.Value("b", 1)
        await _migrate_on_start(app, "main_process")

    @app.before_server_start
    async def open_pool(app: App) -> None:
        if not hasattr(app.shared_ctx, "has_main_process"):
            # Single-process mode and test clients have no main process: migrate here instead.
            await _migrate_on_start(app, "worker")
        app.ctx.pool = await create_pool(app.ctx.settings)

    @app.after_server_stop
    async def close(app: App) -> None:
        pool = getattr(app.ctx, "pool", None)
        if pool is not None:
            await close_pool(pool)
