"""One walker per fleet: hosts compete for a lease in PostgreSQL; the holder walks, the others follow.

The lease is a session advisory lock held on a dedicated connection. PostgreSQL releases it the
moment that connection ends (the process was killed, the network went away), and another host
takes it within ``retry_s``. The holder pings the lease connection and stops walking as soon as
it stops answering, so two walkers never run for longer than one ping interval. Walking resumes
from what is stored: a new walker's first pass only visits rows without a valid stored answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from backend.config import AppConfig
from backend.db.errors import DATABASE_ERRORS
from backend.db.gate import ensure_schema
from backend.db.walker import WalkerStatusStore, lease_key
from backend.metrics import Metrics
from backend.services.graph import Services
from backend.warm.follower import AnswerFollower
from backend.warm.hints import HintListener
from backend.warm.walk import DB_DOWN_ERRORS, LOG_PREFIX, WalkDeps, Walker, WalkerStatus, WarmSettings

logger = logging.getLogger(__name__)

RETRY_S = 2.0
PING_S = 2.0
PING_TIMEOUT_S = 3.0
STATUS_EVERY_S = 1.0


def host_name() -> str:
    return socket.gethostname()


class FleetLeader:
    """Compete for the walker lease forever; while holding it, run ``lead()`` (cancelled on loss).

    Args:
        dsn: PostgreSQL DSN (the lease gets its own connection).
        key: the advisory lock name (:func:`backend.db.walker.lease_key`).
        lead: the coroutine factory run while this process holds the lease.
        name: the process, for log lines.
        retry_s: how often a follower tries to take the lease.
        ping_s: how often the holder checks its lease connection.
        connect: asyncpg.connect (injectable for tests).
        sleep: asyncio.sleep (injectable for tests).
    """

    def __init__(
        self,
        dsn: str,
        key: str,
        lead: Callable[[], Awaitable[None]],
        *,
        name: str,
        retry_s: float = RETRY_S,
        ping_s: float = PING_S,
        connect: Callable[[str], Awaitable[Any]] = asyncpg.connect,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._dsn = dsn
        self._key = key
        self._lead = lead
        self._name = name
        self._retry_s = retry_s
        self._ping_s = ping_s
        self._connect = connect
        self._sleep = sleep
        self.leading = False
        self.terms = 0

    async def run(self) -> None:
        """Until cancelled: try the lease; hold it and lead while it lasts."""
        while True:
            conn = await self._try_lease()
            if conn is None:
                await self._sleep(self._retry_s)
                continue
            try:
                await self._hold(conn)
            finally:
                self.leading = False
                await self._close(conn)
            await self._sleep(self._retry_s)

    async def _try_lease(self) -> Any | None:
        try:
            conn = await self._connect(self._dsn)
        except DATABASE_ERRORS as exc:
            logger.debug("%s lease_unreachable: worker=%s error=%r", LOG_PREFIX, self._name, exc)
            return None
        try:
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._key):
                return conn
        except DATABASE_ERRORS as exc:
            logger.debug("%s lease_unreachable: worker=%s error=%r", LOG_PREFIX, self._name, exc)
        await self._close(conn)
        return None

    async def _hold(self, conn: Any) -> None:
        """Lead while the lease connection answers; cancel the walk the moment it does not."""
        self.leading = True
        self.terms += 1
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        logger.info("%s walker_elected: worker=%s host=%s pid=%d", LOG_PREFIX, self._name, host_name(), os.getpid())
        lead = asyncio.ensure_future(self._lead())
        try:
            while not lead.done():
                waiter = asyncio.ensure_future(lost.wait())
                try:
                    await asyncio.wait((lead, waiter), timeout=self._ping_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if lead.done():
                    break
                if lost.is_set() or not await self._ping(conn):
                    logger.warning("%s walker_lease_lost: worker=%s; stopping the walk", LOG_PREFIX, self._name)
                    return
            if not lead.cancelled() and lead.exception() is not None:
                logger.error("%s walker_failed: worker=%s error=%r", LOG_PREFIX, self._name, lead.exception())
        finally:
            if not lead.done():
                lead.cancel()
                await asyncio.gather(lead, return_exceptions=True)

    async def _ping(self, conn: Any) -> bool:
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT_S)
        except DATABASE_ERRORS:
            return False
        return True

    @staticmethod
    async def _close(conn: Any) -> None:
        """Close the lease connection (which releases the lock); never wait long on a dead one."""
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 2)
        except DATABASE_ERRORS:
            conn.terminate()
        except asyncio.CancelledError:
            conn.terminate()
            raise


class StatusPublisher:
    """Write the walker's status row at most every ``every_s`` (any worker of any host reads it)."""

    def __init__(self, store: WalkerStatusStore, *, every_s: float = STATUS_EVERY_S) -> None:
        self._store = store
        self._every_s = every_s
        self._since = dt.datetime.now(dt.timezone.utc)
        self._latest: WalkerStatus | None = None
        self._changed = asyncio.Event()

    def update(self, status: WalkerStatus) -> None:
        self._latest = status
        self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._latest is not None:
                try:
                    await self._store.write(host_name(), os.getpid(), self._since, self._latest.to_json())
                except DB_DOWN_ERRORS as exc:
                    logger.debug("%s status_not_written error=%r", LOG_PREFIX, exc)
            await asyncio.sleep(self._every_s)


def walk_deps(services: Services) -> WalkDeps:
    """The walker's dependencies from the service graph."""

    async def resolve(rotation_id: int, fresh: bool) -> Any:
        return await services.resolver.resolve(rotation_id, priority="warm", fresh=fresh, must_store=True)

    async def fetch_release(release_id: int, fresh: bool) -> Any:
        return await services.releases.fetch(release_id, priority="warm", fresh=fresh, must_store=True)

    async def ping() -> None:
        await services.pool.fetchval("SELECT 1")

    return WalkDeps(
        rows=services.rows,
        answers=services.answers,
        resolve=resolve,
        fetch_release=fetch_release,
        prefetch=services.resolver.prefetch,
        ping=ping,
        clock=time.monotonic,
    )


async def wait_for_schema(
    settings: AppConfig, *, name: str, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Return once the schemas are ready, applying migrations (when allowed) as soon as the database is up."""
    delay = 1.0
    reported = ""
    while True:
        state = await ensure_schema(settings.database_url or "", settings.schemas, migrate=settings.migrate_on_start)
        if state.ok:
            if reported:
                logger.info("%s schema_ready: worker=%s %s", LOG_PREFIX, name, state.line)
            return
        if state.line != reported:
            logger.warning("%s schema_not_ready: worker=%s status=%s %s", LOG_PREFIX, name, state.status, state.line)
            reported = state.line
        await sleep(delay)
        delay = min(delay * 2, 30.0)


@dataclass
class _Term:
    """What the current leadership term runs (for metrics); empty while following."""

    walker: Walker | None = None
    follower: AnswerFollower | None = None
    listener: HintListener | None = None


async def walk_for_the_fleet(
    services: Services,
    *,
    name: str,
    follower: AnswerFollower | None = None,
    metrics: Metrics | None = None,
    sync_services: bool = False,
) -> None:
    """Compete for the walker lease; while held, walk and re-warm changed rows. Runs until cancelled.

    Args:
        services: this process's services (the walk writes through them to PostgreSQL).
        name: the process, for log lines (``main`` in Sanic's main process).
        follower: this process's running follower (single-process mode), whose hints then also
            reach the walker; None runs a follower and a hint listener only while leading.
        metrics: this process's metrics: the walker's state is copied into them every second.
        sync_services: also copy the services' counters (the main process has no worker doing it).
    """
    settings: AppConfig = services.settings
    schemas = settings.schemas
    dsn = settings.database_url or ""
    term = _Term(follower=follower)

    async def lead() -> None:
        publisher = StatusPublisher(WalkerStatusStore(services.pool, schemas))
        walker = Walker(walk_deps(services), WarmSettings.from_config(settings), name=name, on_status=publisher.update)
        own = follower is None
        active = follower or AnswerFollower(services, name=name, started_at=time.monotonic())
        active.on_hinted_rows = walker.rows_changed
        active.on_missed = walker.request_pass
        term.walker, term.follower = walker, active
        tasks = [asyncio.ensure_future(walker.run()), asyncio.ensure_future(publisher.run())]
        if own:
            await active.load_all()
            listener = HintListener(dsn, schemas, on_hint=active.hint, on_missed=active.missed, name=name)
            term.listener = listener
            tasks += [asyncio.ensure_future(active.run()), asyncio.ensure_future(listener.run())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a crashed task ends this term (logged by the leader), the lease is retried
        finally:
            active.on_hinted_rows = None
            active.on_missed = None
            term.walker = None
            if own:
                term.follower = term.listener = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    leader = FleetLeader(dsn, lease_key(schemas), lead, name=name)

    async def sync_metrics() -> None:
        assert metrics is not None
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            if sync_services:
                metrics.sync(services, follower=term.follower, hints=term.listener)
            metrics.sync_walker(leader.leading, term.walker.status if term.walker is not None else None)

    syncing = asyncio.ensure_future(sync_metrics()) if metrics is not None else None
    try:
        await wait_for_schema(settings, name=name)
        await leader.run()
    finally:
        if syncing is not None:
            syncing.cancel()
            await asyncio.gather(syncing, return_exceptions=True)
