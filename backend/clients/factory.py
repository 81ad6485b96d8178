"""Build the LML client stack (httpx client, breaker, permits, rate limit) from settings."""

from __future__ import annotations

import functools
import ssl

import asyncpg
import httpx

from backend.clients.fleet_budget import FleetTokens
from backend.clients.host_budget import HostBudget
from backend.clients.limiter import CircuitBreaker, HostTokens, LmlLimiter, LocalTokens, TokenSource
from backend.clients.lml import LmlClient
from backend.config import AppConfig

USER_AGENT = "rotation-picker/0.1"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one verifying TLS context: loading the CA bundle costs ~30 ms, so once, not per client."""
    return httpx.create_ssl_context()


def build_http_client(settings: AppConfig) -> httpx.AsyncClient | None:
    """The process's only AsyncClient for LML (None when LML is unconfigured)."""
    if settings.lml_url is None:
        return None
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        verify=tls_context(),
        # Per-call timeouts override the read timeout; connect stays short either way.
        timeout=httpx.Timeout(settings.lml_release_timeout_ms / 1000, connect=3.0),
        limits=httpx.Limits(max_connections=max(10, settings.lml_max_concurrent * 2), max_keepalive_connections=10),
    )


def build_tokens(settings: AppConfig, pool: asyncpg.Pool | None, host: HostBudget | None) -> TokenSource:
    """The fleet's bucket in PostgreSQL, falling back to the host's (or this process's) own bucket."""
    reserve = min(settings.lml_live_reserve, max(0, settings.lml_rate_per_min - 1))
    local: TokenSource = (
        HostTokens(host, reserve=reserve)
        if host is not None
        else LocalTokens(settings.lml_rate_per_min, reserve=reserve)
    )
    if pool is None:
        return local
    return FleetTokens(pool, settings.schemas, settings.lml_rate_per_min, reserve=reserve, fallback=local)


def build_lml_client(
    settings: AppConfig, http: httpx.AsyncClient | None, *, pool: asyncpg.Pool | None, host: HostBudget | None
) -> LmlClient:
    """The LML client with this process's breaker and permits, the host's permits and the fleet's rate."""
    breaker = CircuitBreaker(settings.lml_breaker_threshold, settings.lml_breaker_open_ms / 1000)
    limiter = LmlLimiter(
        settings.lml_max_concurrent,
        settings.lml_queue_wait_ms / 1000,
        breaker,
        build_tokens(settings, pool, host),
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
