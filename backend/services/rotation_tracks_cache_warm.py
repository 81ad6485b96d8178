"""Boot warmer: push every active rotation row through the picker's resolver so first opens are instant."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
import sentry_sdk

from backend.services.release_tracklists import ReleaseFetch, ReleaseOutcome
from backend.services.rotation_resolver import Outcome, Resolution

logger = logging.getLogger(__name__)

LOG_PREFIX = "[rotation-tracks-cache-warm]"
SUBSYSTEM = "rotation-tracks-cache-warm"
PROGRESS_EVERY = 50
PREFETCH_EVERY = 50  # rows whose tier-1/2 data is read in one query ahead of the walk
DB_RETRY_FIRST_S = 1.0
DB_RETRY_MAX_S = 30.0

# Errors that mean "the database is not there (yet)": the row query is retried on these.
DB_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)

_PRE_RESOLVED = frozenset(
    {
        Outcome.TIER1,
        Outcome.TIER2,
        Outcome.NOT_FOUND,
        Outcome.NO_TEXT,
        Outcome.LML_UNCONFIGURED,
        Outcome.CACHE_HIT,
        Outcome.CACHE_NEGATIVE,
    }
)


@dataclass
class WarmCounters:
    """Per-walk counters; names follow upstream's log fields (camelCase in log lines)."""

    rows: int = 0
    scanned: int = 0
    preResolved: int = 0  # noqa: N815 - upstream's field names are part of the log contract
    lmlPositive: int = 0  # noqa: N815
    lmlNegative: int = 0  # noqa: N815
    lmlErrors: int = 0  # noqa: N815
    stampSkipped: int = 0  # noqa: N815
    errors: int = 0
    releaseFetchPositive: int = 0  # noqa: N815
    releaseFetchNegative: int = 0  # noqa: N815
    releaseFetchAlreadyWarm: int = 0  # noqa: N815
    releaseFetchErrors: int = 0  # noqa: N815
    budgetSkipped: int = 0  # noqa: N815
    liveActivityPauseCount: int = 0  # noqa: N815
    liveActivityPauseMs: int = 0  # noqa: N815
    elapsedMs: int = 0  # noqa: N815

    def as_fields(self, *, skip: tuple[str, ...] = ()) -> str:
        """``key=value`` pairs for log lines."""
        return " ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "rows" and k not in skip)

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class WarmSettings:
    """Budgets and probe settings for one walk; defaults live in AppConfig (see the README)."""

    pass_budget_ms: int
    per_row_pause_budget_ms: int
    lookback_s: int
    pause_ms: int
    db_retry_ms: int
    lml_configured: bool


def capture_to_sentry(exc: BaseException, tags: dict[str, str], extra: dict[str, Any]) -> None:
    """Report ``exc`` with ``tags`` and ``extra`` (a no-op when Sentry is not initialised)."""
    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, value)
        for key, value in extra.items():
            scope.set_extra(key, value)
        scope.capture_exception(exc)


Capture = Callable[[BaseException, dict[str, str], dict[str, Any]], None]


@dataclass
class WarmDeps:
    """What one walk needs, all injected so the walk runs without a web framework.

    Attributes:
        list_rows: active rotation ids in walk order.
        resolve: the picker's resolver (with the warmer's background priority bound).
        fetch_release: the release tracklist fetch (same).
        live_activity: whether a DJ logged a track within ``lookback`` seconds.
        clock: monotonic seconds.
        sleep: asyncio-compatible sleep in seconds.
        capture: Sentry reporter.
        on_progress: called after every row with the counters so far (status endpoint).
        on_row: called with each scanned row's outcome (the host walk publishes results here).
        prefetch: reads the next rows' database data in one query (optional; an optimisation).
    """

    list_rows: Callable[[], Awaitable[list[int]]]
    resolve: Callable[[int], Awaitable[Resolution]]
    fetch_release: Callable[[int], Awaitable[ReleaseFetch]]
    live_activity: Callable[[int], Awaitable[bool]]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    capture: Capture = capture_to_sentry
    on_progress: Callable[[WarmCounters], None] | None = None
    on_row: Callable[[int, Resolution, ReleaseFetch | None], None] | None = None
    prefetch: Callable[[list[int]], Awaitable[None]] | None = None


async def _list_rows_with_retry(deps: WarmDeps, settings: WarmSettings, worker: str) -> list[int]:
    """The row query, retried with backoff (1 s doubling to 30 s) for up to ``db_retry_ms``."""
    deadline = deps.clock() + settings.db_retry_ms / 1000
    delay = DB_RETRY_FIRST_S
    while True:
        try:
            return await deps.list_rows()
        except DB_DOWN_ERRORS as exc:
            remaining = deadline - deps.clock()
            if remaining <= 0:
                raise
            wait = min(delay, remaining)
            logger.warning("%s db_unavailable: worker=%s retryInMs=%d error=%r", LOG_PREFIX, worker, wait * 1000, exc)
            await deps.sleep(wait)
            delay = min(delay * 2, DB_RETRY_MAX_S)


class _Walk:
    """State of one walk; split out of the coroutine to keep each step small."""

    def __init__(self, deps: WarmDeps, settings: WarmSettings, worker: str) -> None:
        self.deps = deps
        self.settings = settings
        self.worker = worker
        self.counters = WarmCounters()
        self.started = deps.clock()
        self.probe_error_logged = False

    def elapsed_s(self) -> float:
        return self.deps.clock() - self.started

    def over_pass_budget(self) -> bool:
        return self.elapsed_s() * 1000 > self.settings.pass_budget_ms

    async def prefetch(self, ids: list[int]) -> None:
        """Read the next rows in one query; on failure each row simply reads its own."""
        if self.deps.prefetch is None or self.over_pass_budget():
            return
        try:
            await self.deps.prefetch(ids)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("%s prefetch_failed: worker=%s error=%r", LOG_PREFIX, self.worker, exc)

    async def probe(self) -> bool:
        """Live-DJ probe, fail-open: an error is logged once and treated as quiet."""
        try:
            return await self.deps.live_activity(self.settings.lookback_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.probe_error_logged:
                self.probe_error_logged = True
                logger.warning(
                    "%s live_activity_probe_failed: worker=%s error=%r; treating as quiet",
                    LOG_PREFIX,
                    self.worker,
                    exc,
                )
            return False

    async def wait_for_quiet(self, rotation_id: int) -> bool:
        """Pause while a DJ is live. Return True when a budget ran out (skip the row)."""
        if self.settings.lookback_s <= 0:
            return False
        pause_started = self.deps.clock()
        while await self.probe():
            now = self.deps.clock()
            if self.over_pass_budget() or (now - pause_started) * 1000 > self.settings.per_row_pause_budget_ms:
                return True
            c = self.counters
            c.liveActivityPauseCount += 1
            logger.info(
                "%s live_activity_pause: worker=%s rotation_id=%d pauseMs=%d lookback=%ds",
                LOG_PREFIX,
                self.worker,
                rotation_id,
                self.settings.pause_ms,
                self.settings.lookback_s,
            )
            before = self.deps.clock()
            await self.deps.sleep(self.settings.pause_ms / 1000)
            c.liveActivityPauseMs += round((self.deps.clock() - before) * 1000)
        return False

    async def warm_row(self, rotation_id: int) -> None:
        c = self.counters
        c.scanned += 1
        try:
            resolution = await self.deps.resolve(rotation_id)
        except asyncio.CancelledError:
            c.scanned -= 1  # the row was not finished; shutdown is not an outcome
            raise
        except Exception as exc:
            c.errors += 1
            logger.warning(
                "%s row_failed: worker=%s rotation_id=%d error=%r", LOG_PREFIX, self.worker, rotation_id, exc
            )
            self.deps.capture(exc, {"subsystem": SUBSYSTEM}, {"rotation_id": rotation_id})
            return
        self.count_resolution(resolution)
        fetched = await self.warm_release(rotation_id, resolution)
        if self.deps.on_row is not None:
            self.deps.on_row(rotation_id, resolution, fetched)

    def count_resolution(self, resolution: Resolution) -> None:
        c, outcome = self.counters, resolution.outcome
        if outcome in _PRE_RESOLVED:
            c.preResolved += 1
        elif outcome is Outcome.STAMP_SKIP:
            c.stampSkipped += 1
        elif outcome is Outcome.LML_POSITIVE:
            c.lmlPositive += 1
        elif outcome is Outcome.LML_NEGATIVE:
            c.lmlNegative += 1
        else:
            c.lmlErrors += 1

    async def warm_release(self, rotation_id: int, resolution: Resolution) -> ReleaseFetch | None:
        """Fetch the release too when the row resolved to an id without inline tracks."""
        source = resolution.source
        if source is None or source.release_id is None or source.inline_tracklist is not None:
            return None
        if not self.settings.lml_configured:
            return None
        c = self.counters
        try:
            fetched = await self.deps.fetch_release(source.release_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            c.releaseFetchErrors += 1
            logger.warning(
                "%s release_fetch_failed: worker=%s rotation_id=%d release_id=%d error=%r",
                LOG_PREFIX,
                self.worker,
                rotation_id,
                source.release_id,
                exc,
            )
            self.deps.capture(
                exc,
                {"subsystem": SUBSYSTEM, "phase": "release_fetch"},
                {"rotation_id": rotation_id, "release_id": source.release_id},
            )
            return None
        if fetched.outcome is ReleaseOutcome.FETCHED:
            c.releaseFetchPositive += 1
        elif fetched.outcome is ReleaseOutcome.NOT_FOUND:
            c.releaseFetchNegative += 1
        else:
            c.releaseFetchAlreadyWarm += 1
        return fetched

    def progress(self) -> None:
        self.counters.elapsedMs = round(self.elapsed_s() * 1000)
        if self.deps.on_progress is not None:
            self.deps.on_progress(self.counters)


async def warm_rotation_tracks_cache(deps: WarmDeps, settings: WarmSettings, *, worker: str = "main") -> WarmCounters:
    """Walk every active rotation row once and return the counters.

    Rows are visited in the repository's walk order (heavy rotation, newest first). Each row goes
    through the same resolver (and limiter) as a live picker open, then the release fetch when the
    row resolved to a release id without inline tracks. Cancellation propagates untouched.

    Raises:
        Exception: the row query still failed after ``db_retry_ms`` of retries.
    """
    walk = _Walk(deps, settings, worker)
    ids = await _list_rows_with_retry(deps, settings, worker)
    c = walk.counters
    c.rows = len(ids)
    logger.info("%s start: worker=%s rows=%d", LOG_PREFIX, worker, len(ids))
    if not settings.lml_configured:
        logger.info("%s lml_unconfigured: worker=%s tier-3 lookups and release fetches are skipped", LOG_PREFIX, worker)
    for index, rotation_id in enumerate(ids):
        if index % PREFETCH_EVERY == 0:
            await walk.prefetch(ids[index : index + PREFETCH_EVERY])
        if walk.over_pass_budget() or await walk.wait_for_quiet(rotation_id):
            # Never send a row to LML right after the probe saw a live DJ: it waits for next walk.
            c.budgetSkipped += 1
        else:
            await walk.warm_row(rotation_id)
            if c.scanned % PROGRESS_EVERY == 0:
                logger.info(
                    "%s progress: worker=%s scanned=%d/%d %s",
                    LOG_PREFIX,
                    worker,
                    c.scanned,
                    len(ids),
                    c.as_fields(skip=("scanned", "elapsedMs")),
                )
        walk.progress()
    walk.progress()
    logger.info("%s done: worker=%s %s", LOG_PREFIX, worker, c.as_fields())
    return c


@dataclass
class WarmState:
    """What the status endpoint shows about this process's walk."""

    status: str = "idle"  # idle | running | done | failed | cancelled | disabled
    counters: WarmCounters = field(default_factory=WarmCounters)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "counters": self.counters.to_json(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


async def run_tracked_walk(
    deps: WarmDeps, settings: WarmSettings, state: WarmState, *, worker: str
) -> WarmCounters | None:
    """Run one walk, keeping ``state`` current; failures are logged and captured, never raised."""
    state.status, state.started_at, state.finished_at, state.error = "running", _now_iso(), None, None
    previous = deps.on_progress

    def track(counters: WarmCounters) -> None:
        state.counters = counters
        if previous is not None:
            previous(counters)

    deps.on_progress = track
    try:
        counters = await warm_rotation_tracks_cache(deps, settings, worker=worker)
    except asyncio.CancelledError:
        state.status, state.finished_at = "cancelled", _now_iso()
        logger.info("%s cancelled: worker=%s", LOG_PREFIX, worker)
        raise
    except Exception as exc:
        state.status, state.finished_at, state.error = "failed", _now_iso(), repr(exc)
        logger.error("%s walk_aborted: worker=%s error=%r", LOG_PREFIX, worker, exc)
        deps.capture(exc, {"subsystem": SUBSYSTEM}, {})
        return None
    finally:
        deps.on_progress = previous
    state.counters = counters
    state.status, state.finished_at = "done", _now_iso()
    return counters


TASK_NAME = "rotation-tracks-cache-warm"


def warm_settings_from(config: Any) -> WarmSettings:
    """WarmSettings from an ``AppConfig``."""
    return WarmSettings(
        pass_budget_ms=config.warm_pass_budget_ms,
        per_row_pause_budget_ms=config.warm_per_row_pause_budget_ms,
        lookback_s=config.warm_live_activity_lookback_s,
        pause_ms=config.warm_live_activity_pause_ms,
        db_retry_ms=config.warm_db_retry_ms,
        lml_configured=config.lml_configured,
    )


def warm_deps_from(ctx: Any, *, fresh_after: float | None = None) -> WarmDeps:
    """WarmDeps wired to a worker's services, with the background ("warm") limiter priority.

    ``fresh_after`` makes a refresh walk re-resolve rows cached before it started.
    """

    async def resolve(rotation_id: int) -> Resolution:
        resolution: Resolution = await ctx.resolver.resolve(rotation_id, priority="warm", fresh_after=fresh_after)
        return resolution

    async def fetch_release(release_id: int) -> ReleaseFetch:
        fetched: ReleaseFetch = await ctx.releases.fetch(release_id, priority="warm", fresh_after=fresh_after)
        return fetched

    async def list_rows() -> list[int]:
        ids: list[int] = await ctx.rows.active_ids_in_walk_order()
        # Size the caches from the row count so a large rotation never silently evicts.
        ctx.resolver.cache.grow_to_hold(len(ids))
        ctx.releases.positive.grow_to_hold(len(ids))
        return ids

    return WarmDeps(
        list_rows=list_rows,
        resolve=resolve,
        fetch_release=fetch_release,
        live_activity=ctx.rows.live_activity,
        prefetch=ctx.resolver.prefetch,
    )


def start_rotation_tracks_cache_warm(app: Any) -> None:
    """Fire-and-forget: schedule this process's own walk (and its refreshes) as a named task.

    Used when there is no main process to walk for the host (single-process mode, test clients).
    ``app`` is the Sanic app (duck-typed so this module stays framework-free). The task never
    raises: failures are logged and captured by :func:`run_tracked_walk`.
    """
    ctx = app.ctx
    settings = warm_settings_from(ctx.settings)

    async def walk_once() -> WarmCounters | None:
        coordinator = getattr(ctx, "coordinator", None)
        if coordinator is not None:
            coordinator.clear()  # a refresh must ask LML again, not its 5-minute coalescing cache
        deps = warm_deps_from(ctx, fresh_after=time.monotonic())
        return await run_tracked_walk(deps, settings, ctx.warm_state, worker=ctx.worker)

    async def walk_task() -> None:
        try:
            await walk_forever(walk_once, refresh_s=ctx.settings.warm_refresh_interval_s)
        except asyncio.CancelledError:
            # Shutdown asked this task to end, and it has: finish quietly rather than let Sanic
            # log "cancelled before it completed" for what is a clean stop.
            return
        except Exception:  # a named Sanic task's exception is otherwise lost silently
            logger.exception("%s walk task failed: worker=%s", LOG_PREFIX, ctx.worker)

    app.add_task(walk_task, name=TASK_NAME)  # a callable: nothing leaks if the task never starts


RETRY_FIRST_S = 30.0
RETRY_MAX_S = 600.0


async def walk_forever(
    run_once: Callable[[], Awaitable[WarmCounters | None]],
    *,
    refresh_s: float,
    on_done: Callable[[WarmCounters], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Walk, then walk again every ``refresh_s`` (before the 24 h entries lapse), until cancelled.

    A walk that failed as a whole (``run_once`` returned None) is retried after 30 s, doubling to
    10 min; one caller runs this, so two walks never overlap.
    """
    failures = 0
    while True:
        counters = await run_once()
        if counters is None:
            failures += 1
            await sleep(min(RETRY_FIRST_S * 2 ** (failures - 1), RETRY_MAX_S))
            continue
        failures = 0
        if on_done is not None:
            on_done(counters)
        await sleep(refresh_s)
