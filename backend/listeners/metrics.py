"""Metrics per process: each worker records its own; the main process owns the shared directory."""

from __future__ import annotations

import asyncio
import logging

from backend.context import App
from backend.metrics import Metrics, remove_multiprocess_dir

logger = logging.getLogger(__name__)

SYNC_EVERY_S = 1.0


def sync_worker(app: App) -> None:
    """Copy this worker's service counters into its metrics (also done just before a scrape)."""
    ctx = app.ctx
    metrics = getattr(ctx, "metrics", None)
    if metrics is not None and hasattr(ctx, "services"):
        metrics.sync(ctx.services, follower=getattr(ctx, "follower", None), hints=getattr(ctx, "hints", None))


def register(app: App) -> None:
    """Wire per-worker metrics (only when METRICS_ENABLED)."""
    if not app.ctx.settings.metrics_enabled:
        return

    @app.main_process_stop
    async def remove_metrics_folder(app: App) -> None:
        remove_multiprocess_dir()

    @app.after_server_stop
    async def remove_own_metrics_folder(app: App) -> None:
        # --single-process has no main process stop: the serving process made the folder and removes it
        # (a worker leaves its main process's folder alone).
        remove_multiprocess_dir()

    @app.before_server_start
    async def create_metrics(app: App) -> None:
        app.ctx.metrics = Metrics()

    @app.after_server_start
    async def start_syncing(app: App) -> None:
        async def sync_forever() -> None:
            try:
                while True:
                    await asyncio.sleep(SYNC_EVERY_S)
                    sync_worker(app)
            except asyncio.CancelledError:
                return

        app.add_task(sync_forever, name="rotation-metrics")  # type: ignore[arg-type]
