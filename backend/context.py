"""Typed application context: what listeners put on ``app.ctx``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Sanic
from sanic.config import Config

if TYPE_CHECKING:
    import asyncpg
    import httpx

    from backend.clients.lml import LmlClient
    from backend.config import AppConfig
    from backend.db.rotation import RotationRepository
    from backend.models import Tracklist
    from backend.services.caches import ExpiringCache
    from backend.services.release_tracklists import ReleaseTracklistService
    from backend.services.rotation_resolver import PickerSource, RotationResolver
    from backend.services.rotation_tracks import RotationTracksService
    from backend.services.rotation_tracks_cache_warm import WarmState


class Caches:
    """The process-local caches. Built in the factory so they outlive one server start in tests."""

    def __init__(
        self,
        rotation_positive: ExpiringCache[int, PickerSource],
        rotation_negative: ExpiringCache[int, bool],
        release_positive: ExpiringCache[int, Tracklist],
        release_negative: ExpiringCache[int, bool],
    ) -> None:
        self.rotation_positive = rotation_positive
        self.rotation_negative = rotation_negative
        self.release_positive = release_positive
        self.release_negative = release_negative


class Context:
    """Per-worker state. Resources are opened in listeners and closed on stop."""

    settings: AppConfig
    caches: Caches
    worker: str
    pool: asyncpg.Pool
    http: httpx.AsyncClient | None
    lml: LmlClient
    rows: RotationRepository
    resolver: RotationResolver
    releases: ReleaseTracklistService
    picker: RotationTracksService
    warm_state: WarmState


App = Sanic[Config, Context]
