"""Warm every worker: the main process competes for the fleet's walk; workers load and follow the answers.

Main process: start the walker thread (:mod:`backend.warm.host`), stop it on shutdown. Worker:
load every stored answer *before* accepting connections (a started or restarted worker is warm at
zero LML cost), then follow new answers and re-check rows the station says changed. Without a main
process (``--single-process``, test clients) the worker also competes for the walk itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from backend.context import App
from backend.warm.follower import AnswerFollower
from backend.warm.hints import HintListener
from backend.warm.host import HostWalker
from backend.warm.leader import walk_for_the_fleet
from backend.warm.walk import LOG_PREFIX

logger = logging.getLogger(__name__)

STOP_WAIT_S = 5.0


def _register_main_process(app: App) -> None:
    @app.main_process_ready
    async def start_walker_thread(app: App) -> None:
        settings = app.ctx.settings
        app.ctx.host_walker = None
        if not settings.warm_enabled or not settings.database_url:
            return
        walker = HostWalker(settings, budget=getattr(app.ctx, "budget", None))
        walker.start()
        app.ctx.host_walker = walker

    @app.main_process_stop
    async def stop_walker_thread(app: App) -> None:
        walker = getattr(app.ctx, "host_walker", None)
        if walker is not None:
            await asyncio.get_running_loop().run_in_executor(None, walker.stop)


def _register_worker(app: App) -> None:
    @app.before_server_start
    async def load_stored_answers(app: App) -> None:
        ctx = app.ctx
        ctx.follower = AnswerFollower(ctx.services, name=ctx.worker, started_at=ctx.started_at)
        if ctx.settings.database_url:
            await ctx.follower.load_all(before_serving=True)

    @app.after_server_start
    async def start_background_tasks(app: App) -> None:
        ctx = app.ctx
        settings = ctx.settings
        if not settings.database_url:
            return
        follower = ctx.follower
        listener = HintListener(
            settings.database_url, settings.schemas, on_hint=follower.hint, on_missed=follower.missed, name=ctx.worker
        )
        ctx.hints = listener
        _add_background(app, lambda: _quietly(listener.run()), "rotation-hints")
        _add_background(app, lambda: _quietly(follower.run()), "rotation-answers")
        if settings.warm_enabled and not hasattr(app.shared_ctx, "has_main_process"):
            # No main process to walk for the host: this worker competes for the fleet's walk itself.
            services = ctx.services
            metrics = getattr(ctx, "metrics", None)
            _add_background(
                app,
                lambda: _quietly(walk_for_the_fleet(services, name=ctx.worker, follower=follower, metrics=metrics)),
                "rotation-walk",
            )

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
                    "%s background tasks did not stop within %.0fs tasks=%s",
                    LOG_PREFIX,
                    STOP_WAIT_S,
                    ",".join(sorted(t.get_name() for t in still)),
                )
                for t in still:
                    t.print_stack()
        app.purge_tasks()


def _add_background(app: App, factory: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
    """Schedule a named task from a coroutine *factory*.

    Sanic accepts a callable at run time (the tasks guide shows it); unlike a coroutine object, a
    factory leaks nothing ("never awaited") when the task is cancelled before it starts, as test
    clients do. Sanic's type hints only list awaitables, hence the ignore.
    """
    app.add_task(factory, name=name)  # type: ignore[arg-type]


async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
    """Run a background loop; cancellation is a clean stop, and a crash is logged (Sanic would swallow it)."""
    try:
        await coro
    except asyncio.CancelledError:
        return
    except Exception:
        logger.exception("%s background task failed", LOG_PREFIX)


def register(app: App) -> None:
    """Wire the walker thread (main process) and the worker side (after the services exist)."""
    _register_main_process(app)
    _register_worker(app)
