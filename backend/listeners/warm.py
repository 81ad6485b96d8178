"""Schedule the boot warmer after each worker starts serving; stop it cleanly on shutdown."""

from __future__ import annotations

import asyncio
import logging

from backend.context import App
from backend.services.rotation_tracks_cache_warm import (
    LOG_PREFIX,
    TASK_NAME,
    WarmState,
    start_rotation_tracks_cache_warm,
)

logger = logging.getLogger(__name__)

STOP_WAIT_S = 5.0


def register(app: App) -> None:
    """Kick the walk off in ``after_server_start``; cancel and await it in ``before_server_stop``."""

    @app.before_server_start
    async def init_warm_state(app: App) -> None:
        app.ctx.warm_state = WarmState(status="idle" if app.ctx.settings.warm_enabled else "disabled")

    @app.after_server_start
    async def kick_off_warm(app: App) -> None:
        if app.ctx.settings.warm_enabled:
            start_rotation_tracks_cache_warm(app)

    @app.before_server_stop
    async def stop_warm(app: App) -> None:
        # sanic#2906: a named task still pending when Sanic purges tasks makes the worker spin
        # forever, and a named task's exception is otherwise lost. Cancel, await, then purge.
        task = app.get_task(TASK_NAME, raise_exception=False)
        if task is not None and not task.done():
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
            if not done:
                logger.warning("%s did not stop within %.0fs", LOG_PREFIX, STOP_WAIT_S)
        app.purge_tasks()
