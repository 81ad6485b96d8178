"""Prometheus metrics for the whole host: every worker and the main process's walker, in one scrape.

prometheus-client's multiprocess mode: each process writes its values to files in one directory
(``PROMETHEUS_MULTIPROC_DIR``, made by the main process before the workers start, removed when it
stops), and ``/metrics`` adds them up. Requests are observed as they are served; everything the
services already count (resolver outcomes, LML calls, limiter sheds, caches, hints, the walk) is
copied into the metrics every second, so the request path pays for one counter and one histogram.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

GaugeMode = Literal[
    "all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"
]

if TYPE_CHECKING:
    from backend.services.graph import Services
    from backend.warm.follower import AnswerFollower
    from backend.warm.hints import HintListener
    from backend.warm.walk import WalkerStatus

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DIR_PREFIX = "rotation-picker-metrics-"
_OWNED = re.compile(rf"{_DIR_PREFIX}(\d+)-")
# Request latency buckets (seconds): warm answers take about a millisecond, cold ones seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WALK_FIELDS = (
    "rows", "scanned", "preResolved", "lmlPositive", "lmlNegative", "lmlErrors", "stampSkipped", "errors",
    "releaseFetchPositive", "releaseFetchNegative", "releaseFetchAlreadyWarm", "releaseFetchErrors",
    "budgetSkipped", "liveActivityPauseCount", "liveActivityPauseMs", "dbPauseCount", "dbPauseMs", "elapsedMs",
)  # fmt: skip


def prepare_multiprocess_dir() -> str:
    """Make (or adopt) the directory every process of this host writes its metrics to.

    Called in the app factory, so before prometheus_client is imported. In Sanic's main process it
    creates a fresh directory and exports it in the environment the workers inherit; a worker finds
    it set. Directories left behind by main processes that died are removed first.
    """
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        Path(existing).mkdir(parents=True, exist_ok=True)
        return existing
    _remove_stale_dirs(Path(tempfile.gettempdir()))
    path = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = path
    return path


def _remove_stale_dirs(base: Path) -> None:
    for entry in base.glob(f"{_DIR_PREFIX}*"):
        match = _OWNED.match(entry.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            logger.info("removed stale metrics folder path=%s", entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_multiprocess_dir() -> None:
    """The main process removes its directory when the server stops (workers leave it alone)."""
    path = os.environ.get(MULTIPROC_ENV, "")
    match = _OWNED.match(Path(path).name)
    if match and int(match.group(1)) == os.getpid():
        shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """A worker died: drop its live gauges (its counters keep counting towards the host's totals)."""
    from prometheus_client import multiprocess

    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    """This process's metrics. Build one per process (after :func:`prepare_multiprocess_dir`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry()  # definitions only: values live in the multiprocess files

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Any:
            return Counter(name, doc, list(labels), registry=registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = (), mode: GaugeMode = "livesum") -> Any:
            return Gauge(name, doc, list(labels), registry=registry, multiprocess_mode=mode)

        p = "rotation_picker_"
        self.requests = counter(p + "http_requests_total", "HTTP requests answered", ("route", "method", "status"))
        self.latency = Histogram(
            p + "http_request_duration_seconds", "Time to answer an HTTP request", ["route"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.resolutions = counter(p + "resolutions_total", "Rows resolved, by outcome", ("outcome",))
        self.lml_calls = counter(p + "lml_calls_total", "LML calls, by endpoint and result", ("endpoint", "result"))
        self.limiter_sheds = counter(p + "lml_limiter_sheds_total", "LML calls refused by the limiter", ("reason",))
        self.limiter_wait = counter(
            p + "lml_limiter_wait_seconds_total", "Time callers waited for LML permits and tokens"
        )
        self.breaker_opened = counter(p + "lml_breaker_opened_total", "Times the LML circuit breaker opened")
        self.breaker_open = gauge(p + "lml_breaker_open", "1 while a process's LML breaker is open", mode="livemax")
        self.cache_entries = gauge(p + "cache_entries", "Entries in the process caches", ("cache",))
        self.cache_capacity = gauge(p + "cache_capacity", "Bound of the process caches", ("cache",))
        self.cache_hits = counter(p + "cache_hits_total", "Cache hits", ("cache",))
        self.cache_misses = counter(p + "cache_misses_total", "Cache misses", ("cache",))
        self.cache_evictions = counter(
            p + "cache_evictions_total", "Live entries evicted from a full cache", ("cache",)
        )
        self.hints = counter(p + "hints_total", "Change notifications received", ("kind",))
        self.invalidated = counter(p + "answers_invalidated_total", "Cached answers dropped because their row changed")
        self.answers_loaded = counter(
            p + "answers_loaded_total", "Stored answers loaded into process caches", ("kind",)
        )
        self.walk_leader = gauge(p + "walk_leader", "1 while this host's main process holds the walker lease",
                                 mode="livemax")  # fmt: skip
        self.walk_pass = gauge(p + "walk_pass", "The walker's current or last pass, by summary-line counter",
                               ("counter",), mode="mostrecent")  # fmt: skip
        self.walk_passes = counter(p + "walk_passes_total", "Passes the walker finished")
        self.walk_pending_retries = gauge(p + "walk_pending_retries", "Rows and releases waiting for a retry",
                                          mode="mostrecent")  # fmt: skip
        self.walk_rewarmed = counter(p + "walk_rewarmed_total", "Changed rows the walker warmed again")
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._seen: dict[tuple[str, ...], float] = {}

    # -- the request path --------------------------------------------------------------------------

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    # -- copying service counters (every second, and before a scrape) ------------------------------

    def _add(self, metric: Any, key: tuple[str, ...], total: float, labels: tuple[str, ...] = ()) -> None:
        """Increase a counter by how much ``total`` grew since the last copy."""
        delta = total - self._seen.get(key, 0.0)
        if delta > 0:
            (metric.labels(*labels) if labels else metric).inc(delta)
        self._seen[key] = total

    def sync(
        self,
        services: Services | None = None,
        *,
        follower: AnswerFollower | None = None,
        hints: HintListener | None = None,
    ) -> None:
        """Copy what the services counted since the last call."""
        if services is not None:
            self._sync_services(services)
        if follower is not None:
            self._add(self.invalidated, ("invalidated",), follower.dropped)
            self._add(self.answers_loaded, ("loaded", "rows"), follower.rows_loaded, ("rows",))
            self._add(self.answers_loaded, ("loaded", "releases"), follower.releases_loaded, ("releases",))
        if hints is not None:
            self._add(self.hints, ("hints", "notification"), hints.notifications, ("notification",))
            self._add(self.hints, ("hints", "reconnect"), hints.reconnects, ("reconnect",))

    def _sync_services(self, services: Services) -> None:
        for outcome, n in services.resolver.outcomes.items():
            self._add(self.resolutions, ("resolution", outcome), n, (outcome,))
        for (endpoint, result), n in services.lml.calls.items():
            self._add(self.lml_calls, ("lml", endpoint, result), n, (endpoint, result))
        limiter = services.lml.limiter
        for reason, n in limiter.sheds.items():
            self._add(self.limiter_sheds, ("shed", reason), n, (reason,))
        self._add(self.limiter_wait, ("wait",), limiter.wait_s_total)
        self._add(self.breaker_opened, ("opened",), limiter.breaker.opened)
        self.breaker_open.set(1 if limiter.breaker.state == "open" else 0)
        for name, stats in services.caches.stats().items():
            self.cache_entries.labels(name).set(stats["size"])
            self.cache_capacity.labels(name).set(stats["maxsize"])
            self._add(self.cache_hits, ("hits", name), stats["hits"], (name,))
            self._add(self.cache_misses, ("misses", name), stats["misses"], (name,))
            self._add(self.cache_evictions, ("evictions", name), stats["evictions"], (name,))

    def sync_walker(self, leading: bool, status: WalkerStatus | None) -> None:
        """The walker's state (main process, or a single-process worker)."""
        self.walk_leader.set(1 if leading else 0)
        if status is None:
            return
        counters: Mapping[str, int] = status.counters.to_json()
        for name in WALK_FIELDS:
            self.walk_pass.labels(name).set(counters[name])
        self.walk_pending_retries.set(status.pending_retries)
        self._add(self.walk_passes, ("passes",), status.passes)
        self._add(self.walk_rewarmed, ("rewarmed",), status.rewarmed)


def render() -> tuple[bytes, str]:
    """The host's metrics (every process's files added up) in the Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    with contextlib.suppress(ValueError):  # no multiprocess directory: nothing recorded yet
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
