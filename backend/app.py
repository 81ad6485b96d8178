"""The application factory: builds one Sanic app from an AppConfig, wiring concern by concern."""

from __future__ import annotations

import gc
import logging
import os
import time

from sanic import Sanic

from backend import routes
from backend.config import AppConfig
from backend.context import App, Context
from backend.listeners import auth, db, lifecycle, lml, services, warm
from backend.listeners import metrics as metrics_listener
from backend.logging import sanic_log_config, setup_logging
from backend.metrics import prepare_multiprocess_dir
from backend.request import Request
from backend.sentry import init_sentry
from backend.services.graph import build_caches

logger = logging.getLogger(__name__)

# Nothing here takes a request body; anything larger is refused before it is read.
REQUEST_MAX_SIZE = 64 * 1024


def create_app(config: AppConfig | None = None) -> App:
    """Build the app.

    Args:
        config: settings; read from the environment when omitted.

    Raises:
        ConfigError: a required setting is malformed.
    """
    settings = config if config is not None else AppConfig.from_env()
    setup_logging(settings)
    for warning in settings.warnings:
        logger.warning("config %s", warning)
    init_sentry(settings)
    if settings.metrics_enabled:
        prepare_multiprocess_dir()  # before prometheus_client is imported in this process

    ctx = Context()
    ctx.settings = settings
    ctx.caches = build_caches(settings)
    ctx.worker = "main"
    ctx.draining = False
    app: App = Sanic(settings.app_name, ctx=ctx, request_class=Request, log_config=sanic_log_config(settings))
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = float(settings.drain_timeout_s)
    app.config.ACCESS_LOG = settings.access_log
    app.config.REQUEST_MAX_SIZE = REQUEST_MAX_SIZE

    @app.before_server_start
    async def name_worker(app: App) -> None:
        # Registered first, so it runs before every other start listener.
        app.ctx.started_at = time.monotonic()
        app.ctx.draining = False
        # Everything imported and built so far lives as long as the worker: move it out of the
        # collector's generations so later collections (e.g. while loading answers, or in a
        # request) do not rescan it.
        gc.freeze()
        app.ctx.worker = os.environ.get("SANIC_WORKER_NAME") or f"single-{os.getpid()}"

    lifecycle.register(app)
    db.register(app)
    lml.register(app)
    services.register(app)
    auth.register(app)
    warm.register(app)
    metrics_listener.register(app)
    routes.register(app)

    @app.after_server_start
    async def announce(app: App) -> None:
        logger.info("worker serving worker=%s pid=%d", app.ctx.worker, os.getpid())

    return app
