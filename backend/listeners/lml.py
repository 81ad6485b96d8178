"""One httpx client, limiter and LML client per worker; one LML budget per host."""

from __future__ import annotations

import multiprocessing

from backend.clients.factory import build_http_client, build_lml_client
from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.context import App


def register(app: App) -> None:
    """Create the host budget in the main process; open the LML client in each worker."""

    @app.main_process_start
    async def create_host_budget(app: App) -> None:
        # Workers and the host walk draw on the same permits and tokens (shared memory).
        settings = app.ctx.settings
        shared = HostBudgetShared.create(
            settings.lml_max_concurrent,
            settings.lml_rate_per_min,
            mp_context=multiprocessing.get_context("spawn"),
        )
        shared.to_shared_ctx(app.shared_ctx)

    @app.before_server_start
    async def open_lml(app: App) -> None:
        budget = HostBudgetShared.from_shared_ctx(app.shared_ctx)
        app.ctx.http = build_http_client(app.ctx.settings)
        app.ctx.lml = build_lml_client(app.ctx.settings, app.ctx.http, HostBudget(budget) if budget else None)

    @app.after_server_stop
    async def close_lml(app: App) -> None:
        http = getattr(app.ctx, "http", None)
        if http is not None:
            await http.aclose()
