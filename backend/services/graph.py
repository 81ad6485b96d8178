"""The one place that builds the service graph: for workers, the host's walker thread and single-process mode."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx

from backend.clients.factory import build_http_client, build_lml_client
from backend.clients.host_budget import HostBudget
from backend.clients.lml import LmlClient
from backend.config import AppConfig
from backend.db.answers import AnswerStore
from backend.db.lookups import SharedLookups
from backend.db.rotation import RotationRepository
from backend.services.caches import Caches, ExpiringCache
from backend.services.lookup_coordinator import LookupCoordinator
from backend.services.release_tracklists import ReleaseTracklistService
from backend.services.rotation_resolver import RotationResolver
from backend.services.rotation_tracks import RotationTracksService


def build_caches(settings: AppConfig) -> Caches:
    """The process-local caches, sized and timed from settings."""
    return Caches(
        rotation=ExpiringCache(settings.rotation_cache_max, settings.rotation_cache_ttl_s),
        cold=ExpiringCache(settings.cold_cache_max, settings.rotation_cache_ttl_s),
        release_positive=ExpiringCache(settings.release_cache_max, settings.release_cache_ttl_s),
        release_negative=ExpiringCache(settings.release_cache_max, settings.release_negative_ttl_s),
    )


@dataclass
class Services:
    """Everything that answers pickers and warms them, wired together.

    ``http`` and the services that hold tasks are owned here (:meth:`aclose`); the pool and the
    caches belong to the caller.
    """

    settings: AppConfig
    pool: asyncpg.Pool
    caches: Caches
    http: httpx.AsyncClient | None
    lml: LmlClient
    rows: RotationRepository
    answers: AnswerStore
    coordinator: LookupCoordinator
    resolver: RotationResolver
    releases: ReleaseTracklistService
    picker: RotationTracksService

    async def aclose(self) -> None:
        """Cancel in-flight LML calls and close the HTTP client."""
        await self.releases.aclose()
        await self.coordinator.aclose()
        if self.http is not None:
            await self.http.aclose()


def build_services(
    settings: AppConfig, *, pool: asyncpg.Pool, caches: Caches, host_budget: HostBudget | None
) -> Services:
    """Wire the services on ``pool`` (the LML rate is the fleet's, through PostgreSQL).

    Args:
        settings: the application settings.
        pool: this process's pool (lazy: building touches no database).
        caches: this process's caches.
        host_budget: the host's shared LML permits (None: this process only).
    """
    schemas = settings.schemas
    http = build_http_client(settings)
    lml = build_lml_client(settings, http, pool=pool, host=host_budget)
    rows = RotationRepository(pool, schemas)
    answers = AnswerStore(pool, schemas)
    coordinator = LookupCoordinator(lml, ttl_s=settings.lookup_cache_ttl_s, shared=SharedLookups(pool, schemas))
    resolver = RotationResolver(rows, coordinator, answers, lml_configured=settings.lml_configured, caches=caches)
    releases = ReleaseTracklistService(lml, answers, caches=caches)
    return Services(
        settings=settings,
        pool=pool,
        caches=caches,
        http=http,
        lml=lml,
        rows=rows,
        answers=answers,
        coordinator=coordinator,
        resolver=resolver,
        releases=releases,
        picker=RotationTracksService(resolver, releases),
    )
