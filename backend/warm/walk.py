"""The walk: resolve every active row that lacks a valid stored answer, keep failed rows retrying, re-warm changed rows.

One walker runs per fleet (see :mod:`backend.warm.leader`). It works in three kinds of unit:

- a **pass** over the rows that need work (no valid stored answer, or one that expires within
  ``refresh_ahead``), in walk order, under the budgets and the live-DJ pause; one runs when the
  walker starts and then every ``pass_interval`` (a pass over a warm fleet costs one query);
- **changed rows** (a row inserted, or whose inputs changed: warm on write), taken before the next
  pass row;
- **retries** of rows (and releases) whose attempt failed (LML error, shed, breaker), with backoff,
  until they are warm or confirmed negative. The schedule is stored with the answers, so a restart
  or a new walker retries on the same schedule (and never sooner).

A database outage pauses the walker and it resumes with the row it was on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import sentry_sdk

from backend.db.answers import RetrySchedule
from backend.db.errors import DATABASE_UNAVAILABLE
from backend.services.release_tracklists import ReleaseFetch, ReleaseOutcome
from backend.services.rotation_resolver import Outcome, Resolution

logger = logging.getLogger(__name__)

LOG_PREFIX = "[rotation-tracks-cache-warm]"
SUBSYSTEM = "rotation-tracks-cache-warm"
PROGRESS_EVERY = 50
PREFETCH_EVERY = 50  # rows whose station data is read in one query ahead of the walk
DB_RETRY_FIRST_S = 1.0
DB_RETRY_MAX_S = 30.0
RETRY_FIRST_S = 5.0
# When a walker has nothing due it still wakes this often to read the retry schedule (another
# process may have scheduled a retry).
IDLE_RECHECK_S = 60.0
# After a round failed on something unexpected, wait this long before the next one.
ROUND_FAILED_WAIT_S = 5.0

# Errors that mean "the database is not there": the walker pauses and resumes on these.
DB_DOWN_ERRORS = DATABASE_UNAVAILABLE

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
    """Per-unit counters; names follow upstream's log fields (camelCase in log lines)."""

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
    dbPauseCount: int = 0  # noqa: N815
    dbPauseMs: int = 0  # noqa: N815
    elapsedMs: int = 0  # noqa: N815

    def as_fields(self, *, skip: tuple[str, ...] = ()) -> str:
        """``key=value`` pairs for log lines."""
        return " ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "rows" and k not in skip)

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class WarmSettings:
    """Budgets and probe settings of the walker; defaults live in AppConfig (see the README)."""

    pass_budget_ms: int
    per_row_pause_budget_ms: int
    lookback_s: int
    pause_ms: int
    lml_configured: bool
    pass_interval_s: float = 900.0
    refresh_ahead_s: float = 7200.0
    retry_max_s: float = 60.0

    @classmethod
    def from_config(cls, config: Any) -> WarmSettings:
        """WarmSettings from an ``AppConfig``."""
        return cls(
            pass_budget_ms=config.warm_pass_budget_ms,
            per_row_pause_budget_ms=config.warm_per_row_pause_budget_ms,
            lookback_s=config.warm_live_activity_lookback_s,
            pause_ms=config.warm_live_activity_pause_ms,
            lml_configured=config.lml_configured,
            pass_interval_s=config.warm_pass_interval_s,
            refresh_ahead_s=config.warm_refresh_ahead_s,
            retry_max_s=config.warm_retry_max_s,
        )


def capture_to_sentry(exc: BaseException, tags: dict[str, str], extra: dict[str, Any]) -> None:
    """Report ``exc`` with ``tags`` and ``extra`` (a no-op when Sentry is not initialised)."""
    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, value)
        for key, value in extra.items():
            scope.set_extra(key, value)
        scope.capture_exception(exc)


Capture = Callable[[BaseException, dict[str, str], dict[str, Any]], None]


class WalkRows(Protocol):
    """The queries the walker needs."""

    async def due_rows(
        self, *, refresh_before: dt.datetime, only: list[int] | None = None, retries_only: bool = False
    ) -> list[int]: ...

    async def live_activity(self, lookback_s: int) -> bool: ...


class WalkAnswers(Protocol):
    """The answer store's part the walker needs: retry schedules, due releases and housekeeping."""

    async def save_row_retry(self, rotation_id: int, inputs: str, *, first_s: float, max_s: float) -> float | None: ...

    async def save_release_retry(self, release_id: int, *, first_s: float, max_s: float) -> None: ...

    async def due_releases(self, refresh_before: dt.datetime, *, retries_only: bool = False) -> list[int]: ...

    async def retry_schedule(self) -> RetrySchedule: ...

    async def purge(self) -> tuple[int, int]: ...


@dataclass
class WalkDeps:
    """What the walker needs, all injected so it runs without a web framework.

    Attributes:
        rows: due rows and the live-DJ probe.
        answers: retry schedules, due releases, purge.
        resolve: the resolver (``fresh`` recomputes even a cached answer).
        fetch_release: the release fetch (``fresh`` refetches even a cached one).
        prefetch: reads the next rows' station data in one query (optional; an optimisation).
        ping: a cheap database round trip, to know when an outage is over.
        clock: monotonic seconds.
        now: wall clock (answers expire in wall-clock time).
        sleep: asyncio-compatible sleep in seconds.
        capture: Sentry reporter.
    """

    rows: WalkRows
    answers: WalkAnswers
    resolve: Callable[[int, bool], Awaitable[Resolution]]
    fetch_release: Callable[[int, bool], Awaitable[ReleaseFetch]]
    prefetch: Callable[[list[int]], Awaitable[None]] | None = None
    ping: Callable[[], Awaitable[None]] | None = None
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    capture: Capture = capture_to_sentry


@dataclass
class WalkerStatus:
    """What status endpoints show about the walker."""

    state: str = "idle"  # idle | passing | retrying | waiting | paused_db
    passes: int = 0
    counters: WarmCounters = field(default_factory=WarmCounters)
    pass_started_at: str | None = None
    pass_finished_at: str | None = None
    next_pass_at: str | None = None
    pending_retries: int = 0
    rewarmed: int = 0
    retried: int = 0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["counters"] = self.counters.to_json()
        return body


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Walker:
    """The fleet's single walker (see the module docstring). Run :meth:`run` until cancelled.

    Args:
        deps: injected queries and services.
        settings: budgets, intervals and the live-DJ probe.
        name: the process, for log lines (``main`` in Sanic's main process).
        on_status: called whenever the status changes (throttled by the caller).
    """

    def __init__(
        self,
        deps: WalkDeps,
        settings: WarmSettings,
        *,
        name: str = "main",
        on_status: Callable[[WalkerStatus], None] | None = None,
    ) -> None:
        self._deps = deps
        self._settings = settings
        self._name = name
        self._on_status = on_status
        self._changed: OrderedDict[int, None] = OrderedDict()
        self._wake = asyncio.Event()
        self._probe_error_logged = False
        self._pass_requested = False
        self._next_pass = 0.0
        self.status = WalkerStatus()

    # -- inputs ----------------------------------------------------------------------------------

    def rows_changed(self, rotation_ids: list[int]) -> None:
        """A row was inserted or its inputs changed: re-warm it before the next pass row."""
        for rid in rotation_ids:
            self._changed[rid] = None
        self._wake.set()

    def request_pass(self) -> None:
        """Pass again as soon as the current unit ends (hints may have been lost)."""
        self._pass_requested = True
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Pass, then keep re-warming changed rows, retrying failed ones and passing again, until cancelled.

        Each round catches and reports its own failure (a bug, not an outage: outages pause inside),
        then waits a little and goes on, so one bad row or query never ends the walk.
        """
        d = self._deps
        self._next_pass = d.clock()
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("%s round_failed: worker=%s", LOG_PREFIX, self._name)
                d.capture(exc, {"subsystem": SUBSYSTEM}, {})
                await self._wait(ROUND_FAILED_WAIT_S)

    async def _round(self) -> None:
        """One turn of the loop: changed rows, a pass when due, due retries, else wait for the next event."""
        d, s = self._deps, self._settings
        await self._drain_changed()
        if d.clock() >= self._next_pass or self._pass_requested:
            self._pass_requested = False
            await self.run_pass()
            self._next_pass = d.clock() + s.pass_interval_s
            self.status.next_pass_at = _iso(d.now() + dt.timedelta(seconds=s.pass_interval_s))
            await self._purge()
        schedule = await self._with_db(d.answers.retry_schedule, WarmCounters())
        self.status.pending_retries = schedule.pending
        if s.lml_configured and schedule.next_in_s is not None and schedule.next_in_s <= 0:
            retried = await self.run_retries()
            if (
                retried.scanned
                + retried.releaseFetchPositive
                + retried.releaseFetchNegative
                + retried.releaseFetchErrors
            ):
                return
            # The schedule said a retry was due but nothing could be retried: never spin on it.
        self._set_state("waiting")
        due = schedule.next_in_s if schedule.next_in_s is not None and schedule.next_in_s > 0 else IDLE_RECHECK_S
        await self._wait(min(self._next_pass - d.clock(), due, IDLE_RECHECK_S))

    async def _wait(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or until a changed row or a pass request arrives."""
        if self._changed or self._pass_requested:
            return
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self._deps.sleep(max(0.0, timeout)))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def run_pass(self) -> WarmCounters:
        """One pass over the rows that need work; returns its counters (also in the ``done:`` line)."""
        d, s = self._deps, self._settings
        started = d.clock()
        self._set_state("passing")
        self.status.pass_started_at = _iso(d.now())
        refresh_before = d.now() + dt.timedelta(seconds=s.refresh_ahead_s)
        c = WarmCounters()
        self.status.counters = c
        ids = await self._with_db(lambda: d.rows.due_rows(refresh_before=refresh_before), c)
        c.rows = len(ids)
        logger.info("%s start: worker=%s rows=%d", LOG_PREFIX, self._name, len(ids))
        if not s.lml_configured:
            logger.info(
                "%s lml_unconfigured: worker=%s tier-3 lookups and release fetches are skipped", LOG_PREFIX, self._name
            )
        await self._walk(ids, c, started, progress=True)
        await self._fetch_due_releases(c, refresh_before, retries_only=False)
        c.elapsedMs = round((d.clock() - started) * 1000)
        self.status.passes += 1
        self.status.pass_finished_at = _iso(d.now())
        schedule = await self._with_db(d.answers.retry_schedule, c)
        self.status.pending_retries = schedule.pending
        logger.info("%s done: worker=%s %s pendingRetries=%d", LOG_PREFIX, self._name, c.as_fields(), schedule.pending)
        self._publish()
        return c

    async def run_retries(self) -> WarmCounters:
        """Retry the rows and releases whose retry time has come (one summary line)."""
        d = self._deps
        started = d.clock()
        self._set_state("retrying")
        now = d.now()
        ids = await self._with_db(lambda: d.rows.due_rows(refresh_before=now, retries_only=True), WarmCounters())
        c = WarmCounters(rows=len(ids))
        await self._walk(ids, c, started, progress=False)
        await self._fetch_due_releases(c, now, retries_only=True)
        c.elapsedMs = round((d.clock() - started) * 1000)
        self.status.retried += len(ids)
        schedule = await self._with_db(d.answers.retry_schedule, c)
        self.status.pending_retries = schedule.pending
        logger.info("%s retry: worker=%s rows=%d %s pendingRetries=%d", LOG_PREFIX, self._name, len(ids),
                    c.as_fields(skip=("scanned",)), schedule.pending)  # fmt: skip
        self._publish()
        return c

    async def _walk(self, ids: list[int], c: WarmCounters, started: float, *, progress: bool) -> None:
        """Visit ``ids`` in order under the budgets and the live-DJ pause, re-warming changed rows first."""
        d = self._deps
        for index, rotation_id in enumerate(ids):
            await self._drain_changed()
            if index % PREFETCH_EVERY == 0:
                await self._prefetch(ids[index : index + PREFETCH_EVERY], started)
            if self._over_budget(started) or await self._wait_for_quiet(rotation_id, c, started):
                # Never send a row to LML right after the probe saw a live DJ: the next pass takes it.
                c.budgetSkipped += 1
            else:
                await self._warm_row(rotation_id, c)
                if progress and c.scanned % PROGRESS_EVERY == 0:
                    logger.info(
                        "%s progress: worker=%s scanned=%d/%d %s",
                        LOG_PREFIX,
                        self._name,
                        c.scanned,
                        len(ids),
                        c.as_fields(skip=("scanned", "elapsedMs")),
                    )
            c.elapsedMs = round((d.clock() - started) * 1000)
            self._publish()

    # -- units -----------------------------------------------------------------------------------

    async def _drain_changed(self) -> None:
        """Re-warm changed rows that need it (a changed row whose answer is still valid costs nothing)."""
        if not self._changed:
            return
        ids = list(self._changed)
        self._changed.clear()
        d = self._deps
        c = WarmCounters()
        due = await self._with_db(lambda: d.rows.due_rows(refresh_before=d.now(), only=ids), c)
        if not due:
            return
        started = d.clock()
        c.rows = len(due)
        for rotation_id in due:
            await self._warm_row(rotation_id, c)
        c.elapsedMs = round((d.clock() - started) * 1000)
        self.status.rewarmed += len(due)
        logger.info(
            "%s rewarm: worker=%s rotation_ids=%s %s",
            LOG_PREFIX,
            self._name,
            ",".join(map(str, due)),
            c.as_fields(skip=("scanned",)),
        )
        self._publish()

    async def _warm_row(self, rotation_id: int, c: WarmCounters) -> None:
        """Resolve one row (and fetch its release); on an LML failure schedule a retry with backoff."""
        d = self._deps
        c.scanned += 1
        try:
            resolution = await self._with_db(lambda: d.resolve(rotation_id, True), c)
        except asyncio.CancelledError:
            c.scanned -= 1  # the row was not finished; shutdown is not an outcome
            raise
        except Exception as exc:  # a bug, not LML: the next pass visits the row again
            c.errors += 1
            logger.warning("%s row_failed: worker=%s rotation_id=%d error=%r", LOG_PREFIX, self._name, rotation_id, exc)
            d.capture(exc, {"subsystem": SUBSYSTEM}, {"rotation_id": rotation_id})
            return
        if self._count_resolution(resolution, c) and resolution.inputs is not None:
            inputs = resolution.inputs
            await self._with_db(lambda: self._schedule_row_retry(rotation_id, inputs), c)
        await self._warm_release(rotation_id, resolution, c)

    async def _schedule_row_retry(self, rotation_id: int, inputs: str) -> None:
        s = self._settings
        await self._deps.answers.save_row_retry(rotation_id, inputs, first_s=RETRY_FIRST_S, max_s=s.retry_max_s)

    def _count_resolution(self, resolution: Resolution, c: WarmCounters) -> bool:
        """Count the outcome; return whether it failed (worth a retry)."""
        outcome = resolution.outcome
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
            return True
        return False

    async def _warm_release(self, rotation_id: int, resolution: Resolution, c: WarmCounters) -> None:
        """Fetch the release too when the row resolved to an id without inline tracks."""
        source = resolution.source
        if source is None or source.release_id is None or source.inline is not None:
            return
        if not self._settings.lml_configured:
            return
        await self._fetch_release(source.release_id, c, fresh=False, rotation_id=rotation_id)

    async def _fetch_release(self, release_id: int, c: WarmCounters, *, fresh: bool, rotation_id: int | None) -> None:
        d = self._deps
        try:
            fetched = await self._with_db(lambda: d.fetch_release(release_id, fresh), c)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            c.releaseFetchErrors += 1
            logger.warning(
                "%s release_fetch_failed: worker=%s rotation_id=%s release_id=%d error=%r",
                LOG_PREFIX,
                self._name,
                rotation_id,
                release_id,
                exc,
            )
            d.capture(
                exc,
                {"subsystem": SUBSYSTEM, "phase": "release_fetch"},
                {"rotation_id": rotation_id, "release_id": release_id},
            )
            s = self._settings
            await self._with_db(
                lambda: d.answers.save_release_retry(release_id, first_s=RETRY_FIRST_S, max_s=s.retry_max_s), c
            )
            return
        if fetched.outcome is ReleaseOutcome.FETCHED:
            c.releaseFetchPositive += 1
        elif fetched.outcome is ReleaseOutcome.NOT_FOUND:
            c.releaseFetchNegative += 1
        else:
            c.releaseFetchAlreadyWarm += 1

    async def _fetch_due_releases(self, c: WarmCounters, refresh_before: dt.datetime, *, retries_only: bool) -> None:
        """Fetch stored releases that are missing, due for a retry, or expiring soon (their rows are valid)."""
        if not self._settings.lml_configured:
            return
        answers = self._deps.answers
        due = await self._with_db(lambda: answers.due_releases(refresh_before, retries_only=retries_only), c)
        for release_id in due:
            await self._fetch_release(release_id, c, fresh=True, rotation_id=None)

    # -- database outages ------------------------------------------------------------------------

    async def _with_db(self, call: Callable[[], Awaitable[Any]], c: WarmCounters) -> Any:
        """Run ``call``; while the database is down, pause (backoff 1 s to 30 s) and run it again."""
        delay = DB_RETRY_FIRST_S
        paused_at: float | None = None
        previous_state = self.status.state
        while True:
            try:
                result = await call()
            except DB_DOWN_ERRORS as exc:
                d = self._deps
                if paused_at is None:
                    paused_at = d.clock()
                    c.dbPauseCount += 1
                    self._set_state("paused_db")
                    logger.warning(
                        "%s db_unavailable: worker=%s error=%r; pausing the walk", LOG_PREFIX, self._name, exc
                    )
                await d.sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
                await self._ping_quietly()
                continue
            if paused_at is not None:
                paused_ms = round((self._deps.clock() - paused_at) * 1000)
                c.dbPauseMs += paused_ms
                self._set_state(previous_state)
                logger.info("%s db_available: worker=%s pausedMs=%d; resuming", LOG_PREFIX, self._name, paused_ms)
            return result

    async def _ping_quietly(self) -> None:
        if self._deps.ping is None:
            return
        try:
            await self._deps.ping()
        except DB_DOWN_ERRORS:
            pass

    # -- budgets and the live-DJ pause --------------------------------------------------------------

    def _over_budget(self, started: float) -> bool:
        return (self._deps.clock() - started) * 1000 > self._settings.pass_budget_ms

    async def _prefetch(self, ids: list[int], started: float) -> None:
        """Read the next rows in one query; on failure each row simply reads its own."""
        if self._deps.prefetch is None or self._over_budget(started):
            return
        try:
            await self._deps.prefetch(ids)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("%s prefetch_failed: worker=%s error=%r", LOG_PREFIX, self._name, exc)

    async def _probe(self) -> bool:
        """Live-DJ probe, fail-open: an error is logged once and treated as quiet."""
        try:
            return await self._deps.rows.live_activity(self._settings.lookback_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._probe_error_logged:
                self._probe_error_logged = True
                logger.warning(
                    "%s live_activity_probe_failed: worker=%s error=%r; treating as quiet", LOG_PREFIX, self._name, exc
                )
            return False

    async def _wait_for_quiet(self, rotation_id: int, c: WarmCounters, started: float) -> bool:
        """Pause while a DJ is live. Return True when a budget ran out (skip the row)."""
        s, d = self._settings, self._deps
        if s.lookback_s <= 0:
            return False
        pause_started = d.clock()
        while await self._probe():
            now = d.clock()
            if self._over_budget(started) or (now - pause_started) * 1000 > s.per_row_pause_budget_ms:
                return True
            c.liveActivityPauseCount += 1
            logger.info(
                "%s live_activity_pause: worker=%s rotation_id=%d pauseMs=%d lookback=%ds",
                LOG_PREFIX,
                self._name,
                rotation_id,
                s.pause_ms,
                s.lookback_s,
            )
            before = d.clock()
            await d.sleep(s.pause_ms / 1000)
            c.liveActivityPauseMs += round((d.clock() - before) * 1000)
        return False

    # -- housekeeping ------------------------------------------------------------------------------

    async def _purge(self) -> None:
        try:
            rows, releases = await self._deps.answers.purge()
        except DB_DOWN_ERRORS as exc:
            logger.warning("%s purge_failed: worker=%s error=%r", LOG_PREFIX, self._name, exc)
            return
        if rows or releases:
            logger.info("%s purged: worker=%s rows=%d releases=%d", LOG_PREFIX, self._name, rows, releases)

    def _set_state(self, state: str) -> None:
        if self.status.state != state:
            self.status.state = state
            self._publish()

    def _publish(self) -> None:
        if self._on_status is not None:
            self._on_status(self.status)
