"""A worker's side of the host walk: replay the shared log into the worker's own caches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from backend.services.rotation_tracks_cache_warm import LOG_PREFIX
from backend.services.warm_store import Entry, WarmLogReader, WarmShared, WorkerCaches, apply_entries

logger = logging.getLogger(__name__)

POLL_S = 0.1


class WarmFollower:
    """Copy the host walk's results into this worker's caches, before serving and as they arrive.

    Args:
        shared: the log objects from the main process.
        caches: this worker's caches.
        worker: this worker's name, for log lines.
        started_at: monotonic time the worker started (for "time to warm").
        clock: monotonic seconds.
    """

    def __init__(
        self,
        shared: WarmShared,
        caches: WorkerCaches,
        *,
        worker: str,
        started_at: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._reader = WarmLogReader(shared)
        self._caches = caches
        self._worker = worker
        self._started_at = started_at
        self._clock = clock
        self.entries = 0
        self.rows = 0
        self.release_entries = 0
        self.invalidations = 0
        self.walks_loaded = 0
        self.warm_after_ms: int | None = None

    APPLY_CHUNK = 500

    def _apply(self, restart: bool, entries: list[Entry]) -> None:
        if restart:  # the log was compacted and is replayed from its start: count afresh
            self.entries = self.rows = self.release_entries = 0
        result = apply_entries(entries, self._caches, replay=restart)
        self.entries += len(entries)
        self.rows += result.rows
        self.release_entries += result.releases
        self.invalidations += result.invalidated

    async def catch_up(self, *, before_serving: bool = False) -> int:
        """Apply whatever was published since the last call; log once per completed walk.

        Only the read (IPC to the Manager) runs off the event loop; the caches are written on the
        loop, in chunks, because cachetools caches are not thread-safe and requests read them.
        """
        walks = self._shared.walks.value  # read first: everything of those walks is in the log now
        load_started, cpu_started = self._clock(), time.process_time()
        applied = 0
        if before_serving:
            # Nothing is served yet, so blocking the loop costs nobody; it saves a thread hop.
            snapshot = self._reader.read_snapshot()
            if snapshot is not None:
                self._apply(True, snapshot)
                applied += len(snapshot)
            logger.debug(
                "%s snapshot worker=%s entries=%s",
                LOG_PREFIX,
                self._worker,
                None if snapshot is None else len(snapshot),
            )
        if self._reader.has_new():
            if before_serving:
                restart, entries = self._reader.read_new()
                self._apply(restart, entries)
            else:
                restart, entries = await asyncio.get_running_loop().run_in_executor(None, self._reader.read_new)
                for start in range(0, len(entries), self.APPLY_CHUNK):
                    self._apply(restart and start == 0, entries[start : start + self.APPLY_CHUNK])
                    await asyncio.sleep(0)  # let requests in between chunks of a large replay
            applied += len(entries)
        load_ms = round((self._clock() - load_started) * 1000, 1)
        load_cpu_ms = round((time.process_time() - cpu_started) * 1000, 1)
        if walks > self.walks_loaded:
            self.walks_loaded = walks
            elapsed_ms = round((self._clock() - self._started_at) * 1000)
            if self.warm_after_ms is None:
                self.warm_after_ms = elapsed_ms
            logger.info(
                "%s worker_warm: worker=%s walk=%d entries=%d rows=%d releases=%d sinceStartMs=%d loadMs=%s"
                " loadCpuMs=%s beforeServing=%s",
                LOG_PREFIX,
                self._worker,
                walks,
                self.entries,
                self.rows,
                self.release_entries,
                elapsed_ms,
                load_ms,
                load_cpu_ms,
                str(before_serving).lower(),
            )
        return applied

    async def follow(self, poll_s: float = POLL_S) -> None:
        """Poll for new entries until cancelled (a failing read is logged and retried)."""
        while True:
            try:
                await self.catch_up()
            except (OSError, EOFError) as exc:  # the Manager went away (main process stopping)
                logger.warning("%s follower read failed worker=%s error=%r", LOG_PREFIX, self._worker, exc)
            await asyncio.sleep(poll_s)

    def host_status(self) -> dict[str, Any]:
        """The host walk's status as the main process published it (blocking IPC)."""
        try:
            return dict(self._shared.status)
        except (OSError, EOFError):
            return {"status": "unknown"}

    def status(self) -> dict[str, Any]:
        return {
            "mode": "host",
            "entries_loaded": self.entries,
            "rows_loaded": self.rows,
            "releases_loaded": self.release_entries,
            "invalidations": self.invalidations,
            "walks_loaded": self.walks_loaded,
            "warm_after_ms": self.warm_after_ms,
        }
