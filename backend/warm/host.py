"""The walker's home on a multi-worker host: a thread of Sanic's main process with its own event loop.

The main process lives for the whole server lifetime (it survives worker crashes, restarts and
reloads), so it competes for the fleet's walker lease, not the workers. The thread owns its own
pool and services; what it resolves is written to PostgreSQL, where every worker of every host
picks it up.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.config import AppConfig
from backend.db.pool import close_pool, create_pool
from backend.metrics import Metrics
from backend.services.graph import build_caches, build_services
from backend.warm.leader import walk_for_the_fleet
from backend.warm.walk import LOG_PREFIX

logger = logging.getLogger(__name__)

NAME = "main"


class HostWalker:
    """Start, run and stop the thread (see the module docstring).

    Args:
        settings: the application settings.
        budget: the host-wide LML permits shared with the workers (None: this process only).
    """

    def __init__(self, settings: AppConfig, *, budget: HostBudgetShared | None) -> None:
        self._settings = settings
        self._budget = budget
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="rotation-picker-walker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the walk and wait for the thread to finish its cleanup."""
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed in between
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("%s walker thread did not stop within %.0fs", LOG_PREFIX, timeout_s)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # never let the thread die with an unlogged traceback
            logger.exception("%s walker thread failed", LOG_PREFIX)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stopping.is_set():
            return
        settings = self._settings
        pool = await create_pool(settings)
        services = build_services(
            settings,
            pool=pool,
            caches=build_caches(settings),
            host_budget=HostBudget(self._budget) if self._budget is not None else None,
        )
        metrics = Metrics() if settings.metrics_enabled else None
        try:
            await walk_for_the_fleet(services, name=NAME, metrics=metrics, sync_services=True)
        except asyncio.CancelledError:
            logger.info("%s walker thread stopped", LOG_PREFIX)
        finally:
            await services.aclose()
            await close_pool(pool)
