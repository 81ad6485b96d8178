"""Warm caches once per host: the main process walks, every worker replays the results.

Main process (``main_process_*``): create the shared log, start the walk thread, stop it before
the Manager shuts down. Worker: load what is already published *before* accepting connections
(a restarted worker is warm at zero LML cost), follow the log as it grows, and LISTEN for
invalidations. Without a main process (``--single-process``, test clients) the worker walks for
itself.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from typing import Any

from backend.clients.host_budget import HostBudgetShared
from backend.context import App
from backend.services.host_warm import HostWarmer
from backend.services.invalidation import InvalidationListener
from backend.services.rotation_tracks_cache_warm import (
    LOG_PREFIX,
    TASK_NAME,
    WarmState,
    start_rotation_tracks_cache_warm,
)
from backend.services.warm_follower import WarmFollower
from backend.services.warm_store import WarmShared

logger = logging.getLogger(__name__)

LISTENER_TASK = "rotation-invalidation"
STOP_WAIT_S = 5.0


def _create_shared() -> tuple[WarmShared, Any, str]:
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    # A RAM-backed folder when there is one: the snapshot is read by every (re)starting worker.
    folder = tempfile.mkdtemp(prefix="rotation-picker-warm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    path = os.path.join(folder, "snapshot.pickle").encode()
    snapshot_path = ctx.Array("c", len(path) + 1)
    snapshot_path.value = path  # type: ignore[attr-defined]  # "c" arrays have .value
    shared = WarmShared(
        log=manager.list(),
        status=manager.dict(status="idle"),
        lock=ctx.Lock(),
        epoch=ctx.Value("q", 0),
        published=ctx.Value("q", 0),
        walks=ctx.Value("q", 0),
        snapshot_path=snapshot_path,
    )
    return shared, manager, folder


def _register_main_process(app: App) -> None:
    @app.main_process_start
    async def create_host_store(app: App) -> None:
        settings = app.ctx.settings
        if not settings.warm_enabled or not settings.database_url:
            return
        shared, manager, folder = await asyncio.get_running_loop().run_in_executor(None, _create_shared)
        shared.to_shared_ctx(app.shared_ctx)
        app.ctx.warm_manager = manager
        app.ctx.warm_folder = folder

    @app.main_process_ready
    async def start_host_walk(app: App) -> None:
        shared = WarmShared.from_shared_ctx(app.shared_ctx)
        if shared is None:
            return
        warmer = HostWarmer(app.ctx.settings, shared, budget=HostBudgetShared.from_shared_ctx(app.shared_ctx))
        warmer.start()
        app.ctx.host_warmer = warmer

    @app.main_process_stop
    async def stop_host_walk(app: App) -> None:
        warmer: HostWarmer | None = getattr(app.ctx, "host_warmer", None)
        if warmer is not None:
            await asyncio.get_running_loop().run_in_executor(None, warmer.stop)
        manager = getattr(app.ctx, "warm_manager", None)
        if manager is not None:  # only after the walk thread stopped writing to it
            manager.shutdown()
        folder = getattr(app.ctx, "warm_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _register_worker(app: App) -> None:
    @app.before_server_start
    async def load_published_results(app: App) -> None:
        ctx = app.ctx
        ctx.warm_state = WarmState(status="idle" if ctx.settings.warm_enabled else "disabled")
        ctx.warm_follower = None
        shared = WarmShared.from_shared_ctx(app.shared_ctx)
        if shared is None:
            return
        follower = WarmFollower(shared, ctx.caches, worker=ctx.worker, started_at=ctx.started_at)
        ctx.warm_follower = follower
        await follower.catch_up(before_serving=True)

    @app.after_server_start
    async def start_background_tasks(app: App) -> None:
        ctx = app.ctx
        if ctx.settings.database_url:
            listener = InvalidationListener(
                ctx.settings.database_url,
                on_ids=lambda ids: _drop_rows(app, ids),
                on_all=ctx.resolver.invalidate_all,
                name=ctx.worker,
            )
            ctx.invalidation = listener
            _add_background(app, lambda: _quietly(listener.run()), LISTENER_TASK)
        follower = ctx.warm_follower
        if follower is not None:
            _add_background(app, lambda: _quietly(follower.follow()), TASK_NAME)
        elif ctx.settings.warm_enabled:
            start_rotation_tracks_cache_warm(app)

    @app.before_server_stop
    async def stop_background_tasks(app: App) -> None:
        # sanic#2906: a named task still pending when Sanic purges tasks makes the worker spin
        # forever, and a named task's exception is otherwise lost. Cancel, await, then purge.
        pending = [t for t in app.tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            _, still = await asyncio.wait(pending, timeout=STOP_WAIT_S)
            if still:
                logger.warning(
                    "%s %d background task(s) did not stop within %.0fs", LOG_PREFIX, len(still), STOP_WAIT_S
                )
        app.purge_tasks()


def _add_background(app: App, factory: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
    """Schedule a named task from a coroutine *factory*.

    Sanic accepts a callable at run time (the tasks guide shows it); unlike a coroutine object, a
    factory leaks nothing ("never awaited") when the task is cancelled before it starts, as test
    clients do. Sanic's type hints only list awaitables, hence the ignore.
    """
    app.add_task(factory, name=name)  # type: ignore[arg-type]


def _drop_rows(app: App, ids: list[int]) -> None:
    for rid in ids:
        app.ctx.resolver.invalidate(rid)


async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
    """Run a background loop; cancellation is a clean stop, not an error worth Sanic's warning."""
    try:
        await coro
    except asyncio.CancelledError:
        return


def register(app: App) -> None:
    """Wire the host walk (main process) and the worker side.

    Register this right after the worker is named: loading the published results needs only the
    factory's caches, so a restarted worker is warm before the pool and HTTP client even open.
    """
    _register_main_process(app)
    _register_worker(app)
