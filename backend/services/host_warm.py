"""The host's single warm walk: a thread in Sanic's main process that publishes results to every worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from typing import Any

from backend.clients.factory import build_http_client, build_lml_client
from backend.clients.host_budget import HostBudget, HostBudgetShared
from backend.config import AppConfig
from backend.db.pool import close_pool, create_pool
from backend.db.rotation import RotationRepository
from backend.services.caches import ExpiringCache
from backend.services.invalidation import InvalidationListener
from backend.services.lookup_coordinator import LookupCoordinator
from backend.services.release_tracklists import ReleaseFetch, ReleaseTracklistService
from backend.services.rotation_resolver import Resolution, RotationResolver
from backend.services.rotation_tracks_cache_warm import (
    LOG_PREFIX,
    WarmCounters,
    WarmDeps,
    WarmState,
    run_tracked_walk,
    walk_forever,
    warm_settings_from,
)
from backend.services.warm_store import Entry, WarmLogWriter, WarmShared, row_entries

logger = logging.getLogger(__name__)

WORKER_NAME = "main"
FLUSH_EVERY_ROWS = 20
FLUSH_EVERY_S = 0.25
LISTENER_WAIT_S = 5.0
STATUS_EVERY_S = 0.25


class HostWarmer:
    """Run the walk once per host (and again every refresh interval), in a thread with its own loop.

    The thread owns its own pool, LML client and caches; results go to the shared log that workers
    replay. A failed walk is retried with backoff; there is only ever one walk at a time because
    there is only one thread. Invalidations from PostgreSQL are written to the log as well, so a
    worker that starts later still sees them.

    Args:
        settings: the application settings.
        shared: the log and status objects created in ``main_process_start``.
        budget: the host-wide LML budget shared with the workers (None: this process only).
    """

    def __init__(self, settings: AppConfig, shared: WarmShared, *, budget: HostBudgetShared | None) -> None:
        self._settings = settings
        self._shared = shared
        self._budget = budget
        self._writer = WarmLogWriter(shared)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._buffer: list[Entry] = []
        self._last_flush = 0.0
        self._versions: dict[int, tuple[int, int]] = {}
        self._last_status = 0.0
        self.state = WarmState()

    # -- thread control (called from Sanic's main process loop) ---------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="rotation-tracks-cache-warm", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the walk and wait for the thread (before the Manager it writes to shuts down)."""
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed in between
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("%s host walk thread did not stop within %.0fs", LOG_PREFIX, timeout_s)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # never let the thread die with an unlogged traceback
            logger.exception("%s host walk thread failed", LOG_PREFIX)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stopping.is_set():
            return
        try:
            await self._run()
        except asyncio.CancelledError:
            logger.info("%s host walk stopped", LOG_PREFIX)

    # -- the walk -------------------------------------------------------------------------------

    async def _run(self) -> None:
        s = self._settings
        pool = await create_pool(s)
        http = build_http_client(s)
        host = HostBudget(self._budget) if self._budget is not None else None
        lml = build_lml_client(s, http, host)
        rows = RotationRepository(pool)
        coordinator = LookupCoordinator(lml, ttl_s=s.lookup_cache_ttl_s)
        resolver = RotationResolver(
            rows,
            coordinator,
            lml_configured=s.lml_configured,
            cache=ExpiringCache(s.rotation_cache_max, s.rotation_cache_ttl_s),
        )
        releases = ReleaseTracklistService(
            lml,
            positive=ExpiringCache(s.release_cache_max, s.release_cache_ttl_s),
            negative=ExpiringCache(s.release_cache_max, s.release_negative_ttl_s),
        )
        listener = InvalidationListener(
            s.database_url or "",
            on_ids=lambda ids: self._invalidate(resolver, ids),
            on_all=lambda: self._invalidate_all(resolver),
            name=WORKER_NAME,
        )
        listener_task = asyncio.ensure_future(listener.run())
        try:
            try:
                await asyncio.wait_for(listener.connected.wait(), LISTENER_WAIT_S)
            except asyncio.TimeoutError:
                logger.warning("%s invalidation listener not connected yet; walking anyway", LOG_PREFIX)
            await walk_forever(
                lambda: self._walk_once(rows, coordinator, resolver, releases),
                refresh_s=s.warm_refresh_interval_s,
                on_done=self._after_walk,
            )
        finally:
            listener_task.cancel()
            await asyncio.gather(listener_task, return_exceptions=True)
            await releases.aclose()
            await coordinator.aclose()
            if http is not None:
                await http.aclose()
            await close_pool(pool)

    async def _walk_once(
        self,
        rows: RotationRepository,
        coordinator: LookupCoordinator,
        resolver: RotationResolver,
        releases: ReleaseTracklistService,
    ) -> WarmCounters | None:
        started = time.monotonic()
        coordinator.clear()  # a refresh must ask LML again, not its 5-minute coalescing cache

        async def list_rows() -> list[int]:
            ids = await rows.active_ids_in_walk_order()
            # Size the caches from the row count so a large rotation never silently evicts.
            resolver.cache.grow_to_hold(len(ids))
            releases.positive.grow_to_hold(len(ids))
            return ids

        async def resolve(rotation_id: int) -> Resolution:
            self._versions[rotation_id] = self._writer.version(rotation_id)
            return await resolver.resolve(rotation_id, priority="warm", fresh_after=started)

        async def fetch_release(release_id: int) -> ReleaseFetch:
            return await releases.fetch(release_id, priority="warm", fresh_after=started)

        def on_row(rotation_id: int, resolution: Resolution, fetched: ReleaseFetch | None) -> None:
            self._publish_row(rotation_id, resolution, fetched, resolver, releases)

        deps = WarmDeps(
            list_rows=list_rows,
            resolve=resolve,
            fetch_release=fetch_release,
            live_activity=rows.live_activity,
            on_progress=self._write_status_throttled,
            on_row=on_row,
            prefetch=resolver.prefetch,
        )
        self._set_status_fields(walk_started_at=_now_iso())
        counters = await run_tracked_walk(deps, warm_settings_from(self._settings), self.state, worker=WORKER_NAME)
        self._flush()
        self._write_status()
        return counters

    def _publish_row(
        self,
        rotation_id: int,
        resolution: Resolution,
        fetched: ReleaseFetch | None,
        resolver: RotationResolver,
        releases: ReleaseTracklistService,
    ) -> None:
        if self._writer.version(rotation_id) != self._versions.pop(rotation_id, None):
            return  # the row changed while it was being resolved: its result is stale
        row = resolver.cache.get_with_expiry(rotation_id)
        release_expiry = None
        source = resolution.source
        if fetched is not None and source is not None and source.release_id is not None:
            cached = releases.positive.get_with_expiry(source.release_id) or releases.negative.get_with_expiry(
                source.release_id
            )
            release_expiry = cached[0] if cached else None
        self._buffer.extend(
            row_entries(
                rotation_id,
                resolution,
                fetched,
                row_expires_at=row[0] if row else None,
                release_expires_at=release_expiry,
            )
        )
        if len(self._buffer) >= FLUSH_EVERY_ROWS or time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        self._writer.publish(self._buffer)
        self._buffer = []
        self._last_flush = time.monotonic()

    def _after_walk(self, counters: WarmCounters) -> None:
        s = self._shared
        size = self._writer.compact(time.monotonic())
        s.walks.value += 1
        next_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self._settings.warm_refresh_interval_s)
        self._set_status_fields(walks=s.walks.value, next_walk_at=next_at.isoformat(timespec="seconds"))
        logger.info(
            "%s host_walk_published: walks=%d logEntries=%d nextWalkInS=%d",
            LOG_PREFIX,
            s.walks.value,
            size,
            self._settings.warm_refresh_interval_s,
        )

    # -- invalidation and status ---------------------------------------------------------------

    def _invalidate(self, resolver: RotationResolver, ids: list[int]) -> None:
        for rid in ids:
            resolver.invalidate(rid)
        self._flush()  # results resolved before the change go out before the invalidation
        self._writer.invalidate(ids)

    def _invalidate_all(self, resolver: RotationResolver) -> None:
        resolver.invalidate_all()
        self._flush()
        self._writer.invalidate_all()

    def _write_status(self) -> None:
        self._last_status = time.monotonic()
        self._set_status_fields(**self.state.to_json())

    def _write_status_throttled(self, _counters: WarmCounters) -> None:
        # One IPC round trip to the Manager per row would cost more than the row itself.
        if time.monotonic() - self._last_status >= STATUS_EVERY_S:
            self._write_status()

    def _set_status_fields(self, **fields: Any) -> None:
        try:
            self._shared.status.update(fields)
        except (OSError, EOFError, BrokenPipeError) as exc:  # the Manager is shutting down
            logger.debug("warm status update skipped error=%r", exc)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
