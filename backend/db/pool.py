"""asyncpg pool factory and shutdown helper."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from backend.config import AppConfig

logger = logging.getLogger(__name__)


async def create_pool(config: AppConfig) -> asyncpg.Pool:
    """Create the worker's pool without connecting yet.

    ``min_size=0`` lets a worker boot while PostgreSQL is still down: connections are made on first
    use, so readiness reports the outage and the warmer retries instead of the server dying.

    Raises:
        ValueError: DATABASE_URL is not set.
    """
    if not config.database_url:
        raise ValueError("DATABASE_URL is not set: point it at PostgreSQL, or run `python server.py`")
    pool = await asyncpg.create_pool(
        config.database_url,
        min_size=0,
        max_size=config.db_pool_max,
        command_timeout=config.db_command_timeout_ms / 1000,
        timeout=min(10.0, config.db_command_timeout_ms / 1000),
        reset=_keep_session,
    )
    assert pool is not None  # create_pool only returns None when awaited improperly
    return pool


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release session reset (one extra round trip per query).

    This pool keeps no session state (no SET, no LISTEN, no advisory locks: those use their own
    connections); asyncpg still rolls back an open transaction on release.
    """


async def close_pool(pool: asyncpg.Pool, timeout_s: float = 5.0) -> None:
    """Close ``pool`` gracefully, terminating it if that takes longer than ``timeout_s``."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except asyncio.TimeoutError:
        logger.warning("db pool close timed out after %.1fs; terminating", timeout_s)
        pool.terminate()
