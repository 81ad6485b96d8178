"""Build this worker's services on the opened pool (one builder for workers and the walker thread)."""

from __future__ import annotations

from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.context import App
from backend.services.graph import build_services


def register(app: App) -> None:
    """Wire services after the pool listener (registration order is run order)."""

    @app.before_server_start
    async def open_services(app: App) -> None:
        budget = HostBudgetShared.from_shared_ctx(app.shared_ctx)
        app.ctx.services = build_services(
            app.ctx.settings,
            pool=app.ctx.pool,
            caches=app.ctx.caches,
            host_budget=HostBudget(budget) if budget is not None else None,
        )

    @app.after_server_stop
    async def close_services(app: App) -> None:
        services = getattr(app.ctx, "services", None)
        if services is not None:
            await services.aclose()
