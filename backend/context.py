"""Typed application context: what listeners put on ``app.ctx``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sanic import Sanic
from sanic.config import Config

if TYPE_CHECKING:
    import asyncpg
    import httpx

    from backend.clients.lml import LmlClient
    from backend.config import AppConfig
    from backend.db.rotation import RotationRepository
    from backend.services.host_warm import HostWarmer
    from backend.services.invalidation import InvalidationListener
    from backend.services.lookup_coordinator import LookupCoordinator
    from backend.services.release_tracklists import ReleaseTracklistService
    from backend.services.rotation_resolver import RotationResolver
    from backend.services.rotation_tracks import RotationTracksService
    from backend.services.rotation_tracks_cache_warm import WarmState
    from backend.services.warm_follower import WarmFollower
    from backend.services.warm_store import WorkerCaches


class Context:
    """Per-worker state. Resources are opened in listeners and closed on stop."""

    settings: AppConfig
    caches: WorkerCaches
    worker: str
    pool: asyncpg.Pool
    http: httpx.AsyncClient | None
    lml: LmlClient
    rows: RotationRepository
    coordinator: LookupCoordinator
    resolver: RotationResolver
    releases: ReleaseTracklistService
    picker: RotationTracksService
    warm_state: WarmState
    warm_follower: WarmFollower | None
    invalidation: InvalidationListener
    started_at: float
    # Main process only.
    warm_manager: Any
    warm_folder: str
    host_warmer: HostWarmer


App = Sanic[Config, Context]
