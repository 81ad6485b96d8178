"""Build the LML client stack (httpx client, limiter, breaker) from settings."""

from __future__ import annotations

import httpx

from backend.clients.host_budget import HostBudget
from backend.clients.limiter import CircuitBreaker, LmlLimiter
from backend.clients.lml import LmlClient
from backend.config import AppConfig

USER_AGENT = "rotation-picker/0.1"


def build_http_client(settings: AppConfig) -> httpx.AsyncClient | None:
    """The process's only AsyncClient for LML (None when LML is unconfigured)."""
    if settings.lml_url is None:
        return None
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        # Per-call timeouts override the read timeout; connect stays short either way.
        timeout=httpx.Timeout(settings.lml_release_timeout_ms / 1000, connect=3.0),
        limits=httpx.Limits(max_connections=max(10, settings.lml_max_concurrent * 2), max_keepalive_connections=10),
    )


def build_lml_client(settings: AppConfig, http: httpx.AsyncClient | None, host: HostBudget | None = None) -> LmlClient:
    """The LML client with this process's breaker and limiter (sharing the host budget when given)."""
    breaker = CircuitBreaker(settings.lml_breaker_threshold, settings.lml_breaker_open_ms / 1000)
    limiter = LmlLimiter(
        settings.lml_max_concurrent,
        settings.lml_rate_per_min,
        settings.lml_queue_wait_ms / 1000,
        breaker,
        host=host,
    )
    return LmlClient(
        http,
        base_url=settings.lml_url,
        api_key=settings.lml_api_key,
        limiter=limiter,
        lookup_timeout_s=settings.lml_lookup_timeout_ms / 1000,
        release_timeout_s=settings.lml_release_timeout_ms / 1000,
    )
