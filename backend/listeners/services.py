"""Build the per-worker services from the opened resources and the factory's caches."""

from __future__ import annotations

from backend.context import App
from backend.db.rotation import RotationRepository
from backend.services.lookup_coordinator import LookupCoordinator
from backend.services.release_tracklists import ReleaseTracklistService
from backend.services.rotation_resolver import RotationResolver
from backend.services.rotation_tracks import RotationTracksService


def register(app: App) -> None:
    """Wire services after the pool and LML client listeners (registration order is run order)."""

    @app.before_server_start
    async def build_services(app: App) -> None:
        settings, caches = app.ctx.settings, app.ctx.caches
        app.ctx.rows = RotationRepository(app.ctx.pool)
        app.ctx.coordinator = LookupCoordinator(app.ctx.lml, ttl_s=settings.lookup_cache_ttl_s)
        app.ctx.resolver = RotationResolver(
            app.ctx.rows,
            app.ctx.coordinator,
            lml_configured=settings.lml_configured,
            cache=caches.rotation,
        )
        app.ctx.releases = ReleaseTracklistService(
            app.ctx.lml, positive=caches.release_positive, negative=caches.release_negative
        )
        app.ctx.picker = RotationTracksService(app.ctx.resolver, app.ctx.releases)

    @app.after_server_stop
    async def close_services(app: App) -> None:
        releases = getattr(app.ctx, "releases", None)
        if releases is not None:
            await releases.aclose()
        coordinator = getattr(app.ctx, "coordinator", None)
        if coordinator is not None:
            await coordinator.aclose()
