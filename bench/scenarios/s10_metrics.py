"""Scenario 10: warm-hit max throughput with metrics on (scraped every 5 s) vs off, in alternating runs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from bench.catalogs import cacheable_active_ids
from bench.context import BenchContext
from bench.hosts import wait_walk
from bench.load import LoadResult, run_wrk
from bench.results import ScenarioResult, median
from devtools.processes import FakeProcess, ServerProcess

logger = logging.getLogger("bench")

WORKERS = 2
LML_MS = 2.0
WRK_CONNECTIONS = 8
SCRAPE_EVERY_S = 5.0


@dataclass
class Scraper:
    """Something that scrapes ``/metrics`` every ``SCRAPE_EVERY_S`` seconds, like Prometheus, until stopped."""

    server: ServerProcess
    statuses: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            try:
                response = self.server.get_fresh("/metrics", timeout=10)
                self.statuses.append(response.status)
                self.sizes.append(len(response.content))
            except OSError:
                self.statuses.append(0)
            if self._stop.wait(SCRAPE_EVERY_S):  # the scrape interval, not a wait for anything
                return

    def __enter__(self) -> Scraper:
        self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)


def _measure(
    ctx: BenchContext, url: str, fake: FakeProcess, paths: list[str], on: bool, duration: float
) -> tuple[LoadResult, list[int], int]:
    """A host with METRICS_ENABLED on or off, warm from the stored answers; wrk at max (scraped when on)."""
    with ctx.server(url, fake, workers=WORKERS, METRICS_ENABLED="true" if on else "false") as server:
        wait_walk(server, url)
        run_wrk(server.url, paths, 2, WRK_CONNECTIONS, ctx.tmp, ctx.auth)  # warm-up, not measured
        if not on:
            return run_wrk(server.url, paths, duration, WRK_CONNECTIONS, ctx.tmp, ctx.auth), [], 0
        with Scraper(server) as scraper:
            load = run_wrk(server.url, paths, duration, WRK_CONNECTIONS, ctx.tmp, ctx.auth)
        return load, scraper.statuses, max(scraper.sizes, default=0)


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    spec = ctx.spec(stable=True)
    catalog = spec.build()
    duration = ctx.seconds(15, 10)
    paths = [f"/library/rotation/{i}/tracks" for i in cacheable_active_ids(catalog)]
    loads: dict[str, list[LoadResult]] = {"on": [], "off": []}
    statuses: list[int] = []
    size = 0
    with ctx.pg.database("s10", catalog) as url, ctx.fake(spec, LML_MS) as fake:
        with ctx.server(url, fake, workers=WORKERS) as server:  # the walk that stores every answer
            wait_walk(server, url)
        for r in range(ctx.runs):
            for state in ("on", "off") if r % 2 == 0 else ("off", "on"):
                load, scrapes, scraped = _measure(ctx, url, fake, paths, state == "on", duration)
                loads[state].append(load)
                statuses += scrapes
                size = max(size, scraped)
                logger.info("s10: run %d metrics %s: rps=%.0f p99=%.2fms errors=%d scrapes=%s",
                            r + 1, state, load.rps, load.p99_ms or 0, load.errors, scrapes)  # fmt: skip
    ratios = [on.rps / off.rps for on, off in zip(loads["on"], loads["off"], strict=True) if off.rps]
    for state in ("on", "off"):
        rps = [r.rps for r in loads[state]]
        result.add(f"warm-hit throughput, metrics {state} (wrk)", median(rps), "req/s", samples=rps)
        p99 = [r.p99_ms for r in loads[state] if r.p99_ms is not None]
        result.add(f"warm-hit p99, metrics {state} (wrk)", median(p99), "ms", samples=p99)
    ratio = median(ratios)
    result.add("throughput on / off", ratio, "", goal="≥ 0.95", passed=ratio is not None and ratio >= 0.95,
               samples=ratios)  # fmt: skip
    failed = sum(1 for s in statuses if s != 200)
    result.add("scrapes of /metrics during the 'on' loads", len(statuses), "",
               note=f"largest body {size:,} B")  # fmt: skip
    result.add("failed scrapes", failed, "", goal="0", passed=failed == 0 and bool(statuses))
    errors = sum(r.errors for rs in loads.values() for r in rs)
    result.add("errors / non-2xx during the loads", errors, "", goal="0", passed=errors == 0)
    result.notes.append(
        f"Scenario 1's warm-hit load (wrk 1 thread x {WRK_CONNECTIONS} connections for {duration:.0f} s over every "
        f"active row, DJ token) on a {WORKERS}-worker host started on the stored answers with METRICS_ENABLED=true "
        f"while a thread scrapes GET /metrics every {SCRAPE_EVERY_S:.0f} s (from the load's start), vs a host with "
        "METRICS_ENABLED=false; on and off alternate which goes first, one pair per run; the ratio is per pair."
    )
