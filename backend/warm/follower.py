"""Keep one process's caches equal to the persisted answers: load them all before serving, then follow.

Every worker (and the walker) runs one. It loads every valid stored answer at start, reads new
ones when the ``<service>_answers`` notification says some were written (and every few seconds
in case a notification was lost), and re-checks cached rows against the station when a hint says
they may have changed: a cached answer whose row's inputs differ is dropped. Nothing here calls LML.

A read only returns answers whose inputs matched the station's in the read's snapshot; a change
committed after it is hinted, and a hinted row is re-checked after the read is applied (hints are
processed before each read and whenever one arrives), so a stale answer is never kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from backend.aio import wait_event
from backend.services.graph import Services
from backend.warm.hints import Hint
from backend.warm.walk import DB_DOWN_ERRORS, LOG_PREFIX

logger = logging.getLogger(__name__)

POLL_S = 5.0
REVALIDATE_CHUNK = 5_000


class AnswerFollower:
    """See the module docstring.

    Args:
        services: this process's services (answers store, repository, resolver, releases).
        name: the process, for log lines.
        started_at: monotonic time the process started (for "time to warm").
        clock: monotonic seconds.
        poll_s: read new answers at least this often, notification or not.
    """

    def __init__(
        self,
        services: Services,
        *,
        name: str,
        started_at: float,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
    ) -> None:
        self._s = services
        self._name = name
        self._started_at = started_at
        self._clock = clock
        self._poll_s = poll_s
        self._cursor = 0
        self._loaded = False
        self._wake = asyncio.Event()
        self._hinted: set[int] = set()
        self._hinted_libraries: set[int] = set()
        self._recheck_all = False
        self.loads = 0
        self.rows_loaded = 0
        self.releases_loaded = 0
        self.dropped = 0
        self.hints = 0
        self.warm_after_ms: float | None = None
        # Set by the walker while it leads: hinted rows (after library ids are resolved) and lost hints.
        self.on_hinted_rows: Callable[[list[int]], None] | None = None
        self.on_missed: Callable[[], None] | None = None

    # -- hints (called from notification callbacks; never block) --------------------------------

    def hint(self, hint: Hint) -> None:
        """Dispatch one notification (see :mod:`backend.warm.hints`)."""
        if hint.unreadable:
            self.missed()
            return
        if hint.answers:
            self.answers_written()
        if hint.rotation_ids:
            self.rows_hinted(list(hint.rotation_ids))
        if hint.library_ids:
            self.libraries_hinted(list(hint.library_ids))

    def answers_written(self) -> None:
        self._wake.set()

    def rows_hinted(self, rotation_ids: list[int]) -> None:
        self.hints += len(rotation_ids)
        self._hinted.update(rotation_ids)
        self._wake.set()

    def libraries_hinted(self, library_ids: list[int]) -> None:
        self.hints += len(library_ids)
        self._hinted_libraries.update(library_ids)
        self._wake.set()

    def missed(self) -> None:
        """Notifications may have been lost (a reconnect): re-check everything cached, read what is new."""
        self._recheck_all = True
        self._wake.set()
        if self.on_missed is not None:
            self.on_missed()

    # -- loading -----------------------------------------------------------------------------------

    async def load_all(self, *, before_serving: bool = False) -> bool:
        """Load every valid stored answer; False (logged) when the database cannot be reached."""
        started = self._clock()
        try:
            count = await self._s.rows.active_count()
            loaded = await self._s.answers.load(0)
        except DB_DOWN_ERRORS as exc:
            logger.warning(
                "%s answers_not_loaded: worker=%s error=%r; serving cold until the database is back",
                LOG_PREFIX,
                self._name,
                exc,
            )
            return False
        c = self._s.caches
        c.rotation.grow_to_hold(max(count, len(loaded.rows)))
        c.release_positive.grow_to_hold(max(count, len(loaded.releases)))
        c.release_negative.grow_to_hold(max(count, len(loaded.releases)))
        self._apply(loaded.rows, loaded.releases)
        self._cursor = max(self._cursor, loaded.last_seq)
        self._loaded = True
        self.loads += 1
        now = self._clock()
        if self.warm_after_ms is None:
            self.warm_after_ms = round((now - self._started_at) * 1000, 1)
        logger.info(
            "%s worker_warm: worker=%s rows=%d releases=%d loadMs=%.1f sinceStartMs=%d beforeServing=%s",
            LOG_PREFIX,
            self._name,
            len(loaded.rows),
            len(loaded.releases),
            (now - started) * 1000,
            (now - self._started_at) * 1000,
            str(before_serving).lower(),
        )
        return True

    async def load_new(self) -> int:
        """Read answers written since the last read; return how many were applied."""
        loaded = await self._s.answers.load(self._cursor)
        if loaded.rows or loaded.releases:
            c = self._s.caches
            c.rotation.grow_to_hold(len(c.rotation) + len(loaded.rows))
            c.release_positive.grow_to_hold(len(c.release_positive) + len(loaded.releases))
            c.release_negative.grow_to_hold(len(c.release_negative) + len(loaded.releases))
            self._apply(loaded.rows, loaded.releases)
        self._cursor = max(self._cursor, loaded.last_seq)
        return len(loaded.rows) + len(loaded.releases)

    def _apply(self, rows: list[Any], releases: list[Any]) -> None:
        for release in releases:
            self._s.releases.load(release)
        for row in rows:
            self._s.resolver.load(row)
        self.rows_loaded += len(rows)
        self.releases_loaded += len(releases)

    # -- re-checking -------------------------------------------------------------------------------

    async def recheck(self, rotation_ids: list[int]) -> list[int]:
        """Drop cached answers of these rows whose inputs changed; return the dropped ids."""
        dropped: list[int] = []
        for start in range(0, len(rotation_ids), REVALIDATE_CHUNK):
            chunk = rotation_ids[start : start + REVALIDATE_CHUNK]
            current = await self._s.rows.current_inputs(chunk)
            dropped += self._s.resolver.revalidate(chunk, current)
        dropped = sorted(set(dropped))
        self.dropped += len(dropped)
        if dropped:
            logger.info(
                "%s invalidated: worker=%s rows=%d rotation_ids=%s",
                LOG_PREFIX,
                self._name,
                len(dropped),
                ",".join(map(str, dropped[:20])) + ("..." if len(dropped) > 20 else ""),
            )
        return dropped

    async def _process_hints(self) -> None:
        """Re-check what hints named. A hint is taken before its re-check (one arriving meanwhile is
        kept for the next round) and put back if the re-check fails."""
        if self._recheck_all:
            self._recheck_all = False
            ids = self._s.resolver.cached_ids() + self._s.caches.cold.keys()
            try:
                dropped = await self.recheck(ids)
            except BaseException:
                self._recheck_all = True
                raise
            logger.info("%s rechecked: worker=%s cached=%d dropped=%d", LOG_PREFIX, self._name, len(ids), len(dropped))
        if self._hinted_libraries:
            libraries = list(self._hinted_libraries)
            self._hinted_libraries.difference_update(libraries)
            try:
                self._hinted.update(await self._s.rows.rows_of_albums(libraries))
            except BaseException:
                self._hinted_libraries.update(libraries)
                raise
        if self._hinted:
            ids = sorted(self._hinted)
            self._hinted.difference_update(ids)
            try:
                await self.recheck(ids)
            except BaseException:
                self._hinted.update(ids)
                raise
            if self.on_hinted_rows is not None:
                self.on_hinted_rows(ids)

    async def run(self) -> None:
        """Follow until cancelled: re-check hinted rows, read new answers; never raises."""
        while True:
            await wait_event(self._wake, self._poll_s)
            self._wake.clear()
            try:
                await self._process_hints()
                if not self._loaded:
                    await self.load_all()
                else:
                    await self.load_new()
            except asyncio.CancelledError:
                raise
            except DB_DOWN_ERRORS as exc:
                logger.debug("%s follow_skipped: worker=%s error=%r", LOG_PREFIX, self._name, exc)
            except Exception:
                logger.exception("%s follow_failed: worker=%s", LOG_PREFIX, self._name)

    def status(self) -> dict[str, Any]:
        return {
            "loaded": self._loaded,
            "loads": self.loads,
            "rows_loaded": self.rows_loaded,
            "releases_loaded": self.releases_loaded,
            "hints": self.hints,
            "dropped": self.dropped,
            "warm_after_ms": self.warm_after_ms,
            "cursor": self._cursor,
        }
