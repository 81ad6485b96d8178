"""The fleet's LML rate limit: one token bucket in PostgreSQL shared by every host and worker."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from backend.db.errors import DATABASE_ERRORS
from backend.db.schemas import Schemas

from .limiter import Clock, Sleep, TokenSource, check_priority, wait_for_token

logger = logging.getLogger(__name__)

# A token round trip is well under a millisecond; one that takes this long (a stalled server, a pool
# with no free connection) counts as the budget being unreachable.
ROUND_TRIP_LIMIT_S = 1.0


class FleetTokens:
    """``LML_CLIENT_RATE_PER_MIN`` for the whole fleet, enforced by ``<service>.take_lml_token``.

    One round trip per LML call (measured in the benchmarks: well under a millisecond, against
    LML's tens of milliseconds to seconds). Warm callers leave ``reserve`` tokens to live ones.
    While the database cannot be reached, tokens come from ``fallback`` (the host's own bucket),
    so a host keeps serving from what it has; the fleet total is then not enforced.

    Args:
        pool: an asyncpg pool.
        schemas: where the budget lives.
        rate_per_min: the fleet's rate (capacity and refill per minute).
        reserve: tokens warm callers leave for live ones.
        fallback: the token source used while PostgreSQL is unreachable.
        clock: monotonic seconds.
        sleep: awaited between attempts.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schemas: Schemas,
        rate_per_min: int,
        *,
        reserve: int,
        fallback: TokenSource,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._pool = pool
        self._sql = f"SELECT {schemas.service}.take_lml_token($1, $2)"
        self._rate = float(rate_per_min)
        self._reserve = reserve
        self._fallback = fallback
        self._clock = clock
        self._sleep = sleep
        self._degraded = False
        self.round_trips = 0
        self.round_trip_s = 0.0

    async def take(self, priority: str, deadline: float | None) -> None:
        check_priority(priority)
        keep = 0.0 if priority == "live" else float(self._reserve)

        async def attempt() -> float:
            started = self._clock()
            limit = ROUND_TRIP_LIMIT_S if deadline is None else min(ROUND_TRIP_LIMIT_S, deadline - started)
            wait: float = await asyncio.wait_for(self._pool.fetchval(self._sql, self._rate, keep), max(limit, 0.0))
            self.round_trips += 1
            self.round_trip_s += self._clock() - started
            return wait

        try:
            await wait_for_token(attempt, deadline, self._clock, self._sleep)
        except DATABASE_ERRORS as exc:
            if not self._degraded:
                logger.warning("fleet LML budget unreachable error=%r; using the host budget until it is back", exc)
                self._degraded = True
            await self._fallback.take(priority, deadline)
            return
        if self._degraded:
            logger.info("fleet LML budget reachable again")
            self._degraded = False

    def snapshot(self) -> dict[str, object]:
        mean_ms = 1000 * self.round_trip_s / self.round_trips if self.round_trips else None
        return {
            "scope": "host (fleet budget unreachable)" if self._degraded else "fleet",
            "rate_per_min": self._rate,
            "reserve": self._reserve,
            "round_trip_ms": None if mean_ms is None else round(mean_ms, 3),
            "fallback": self._fallback.snapshot(),
        }
