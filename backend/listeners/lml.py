"""One LML budget per host: permits and a fallback token bucket in shared memory, made in the main process."""

from __future__ import annotations

import multiprocessing

from backend.clients.host_budget import HostBudgetShared
from backend.context import App


def register(app: App) -> None:
    """Create the host budget in the main process (workers find it in ``shared_ctx``)."""

    @app.main_process_start
    async def create_host_budget(app: App) -> None:
        # Workers and the walker thread draw on the same permits (shared memory, no server process).
        settings = app.ctx.settings
        shared = HostBudgetShared.create(
            settings.lml_max_concurrent,
            settings.lml_rate_per_min,
            mp_context=multiprocessing.get_context("spawn"),
        )
        shared.to_shared_ctx(app.shared_ctx)
        app.ctx.budget = shared
