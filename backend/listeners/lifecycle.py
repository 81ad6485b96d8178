"""Process lifecycle: Sanic patches, the drain budget, the draining flag and the orphan watch."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Coroutine
from typing import Any

from backend.context import App
from backend.lifecycle import sanic_patches
from backend.lifecycle.supervisor import SupervisedWorkerManager
from backend.lifecycle.worker import mark_draining, watch_parent
from backend.metrics import mark_process_dead

PARENT_WATCH_TASK = "lifecycle-parent-watch"


def register(app: App) -> None:
    """Install the lifecycle fixes and wire the worker side into ``app``."""
    sanic_patches.install()
    SupervisedWorkerManager.configure(
        drain_s=float(app.ctx.settings.drain_timeout_s), on_worker_death=worker_died(app.ctx.settings.metrics_enabled)
    )

    @app.after_server_start
    async def watch_main_process(app: App) -> None:
        parent = multiprocessing.parent_process()
        if parent is None or parent.pid is None:  # single process or test client: no main process
            return
        parent_pid = parent.pid

        def watch() -> Coroutine[Any, Any, None]:
            return watch_parent(app.ctx.worker, parent_pid)

        # Sanic accepts a coroutine factory at run time; its hints list only awaitables.
        app.add_task(watch, name=PARENT_WATCH_TASK)  # type: ignore[arg-type]

    @app.before_server_stop
    async def flag_draining(app: App) -> None:
        mark_draining(app)  # readiness answers 503 from now on


def worker_died(metrics_enabled: bool) -> Callable[[int], None] | None:
    """What the main process does with a dead worker's pid before replacing it."""
    return mark_process_dead if metrics_enabled else None
