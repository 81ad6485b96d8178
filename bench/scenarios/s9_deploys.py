"""Scenario 9: warm across deploys from the answers stored in PostgreSQL, and the fleet LML budget's round trip."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bench.context import BenchContext
from bench.hosts import DONE, WORKER_WARM, log_time, readiness, stop_host, wait_walk
from bench.pg import reseed
from bench.results import ScenarioResult, median
from devtools.processes import FakeProcess, fields

logger = logging.getLogger("bench")

WORKERS = 2
LML_MS = 1.0  # the walks that store the answers
RTT_LML_MS = 50.0  # the walk whose fleet-token round trips are compared with LML's latency
WALK_TIMEOUT_S = 3600.0  # 30,000 rows
GOAL_ROWS = 30_000
GOAL_MS = 1000.0


@dataclass(frozen=True)
class Deploy:
    """One host start on stored answers."""

    launch_to_warm_ms: float  # process launch to the last worker's worker_warm beforeServing=true line
    load_ms: float  # the slowest worker's loadMs
    since_start_ms: float  # the slowest worker's sinceStartMs (from its first start listener)
    rows: int  # answers the workers loaded (the smallest count)
    lml_calls: int  # until every worker is warm and the walker's first pass is done


def deploy(ctx: BenchContext, url: str, fake: FakeProcess) -> Deploy:
    """Start a host on the stored answers, measure it, stop it."""
    fake.reset()
    launched = time.time()
    server = ctx.host(url, fake, WORKERS)
    try:
        warm = server.wait_for_log(WORKER_WARM, WORKERS, 120)
        server.wait_for_log(DONE, 1, 120)
        lookups, releases = fake.calls()
        parsed = [fields(line) for line in warm]
        times = [log_time(line) for line in warm]
        if any(t is None for t in times):
            raise RuntimeError(f"worker_warm lines without a timestamp: {warm}")
        return Deploy(
            launch_to_warm_ms=(max(t for t in times if t is not None) - launched) * 1000,
            load_ms=max(float(f["loadMs"]) for f in parsed),
            since_start_ms=max(float(f["sinceStartMs"]) for f in parsed),
            rows=min(int(f["rows"]) for f in parsed),
            lml_calls=lookups + releases,
        )
    finally:
        stop_host(server)


def round_trip(ctx: BenchContext, url: str, fake: FakeProcess) -> tuple[float | None, int]:
    """A cold walk by a ``--single-process`` host (its worker walks): readiness's mean round trip per token."""
    fake.set_latency(RTT_LML_MS)
    fake.reset()
    try:
        # METRICS_ENABLED=false: a --single-process host leaves its metrics folder behind when it stops.
        with ctx.server(url, fake, workers=0, METRICS_ENABLED="false") as server:
            wait_walk(server, url, walker=r"\S+", timeout=WALK_TIMEOUT_S)
            tokens = readiness(server)["limiter"]["tokens"]
            calls = sum(fake.calls())
    finally:
        fake.set_latency(LML_MS)
    value = tokens.get("round_trip_ms")
    return (float(value) if value is not None else None), calls


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    scales = (310, 3000) if ctx.quick else (310, 3000, 30_000)
    deploys: dict[int, list[Deploy]] = {}
    worker_rtt: list[object] = []
    rtt: tuple[float | None, int] = (None, 0)
    for rows in scales:
        spec = ctx.spec("scale", rows=rows, killed_copies=0, stable=True)
        catalog = spec.build()
        with ctx.pg.database(f"s9_{rows}", catalog) as url, ctx.fake(spec, LML_MS) as fake:
            with ctx.server(url, fake, workers=WORKERS) as server:  # the walk that stores every answer
                wait_walk(server, url, timeout=WALK_TIMEOUT_S)
                if rows == scales[0]:
                    worker_rtt = [r.json()["limiter"]["tokens"].get("round_trip_ms")
                                  for r in server.per_worker("/health/ready").values()]  # fmt: skip
            deploys[rows] = []
            for r in range(ctx.runs):
                d = deploy(ctx, url, fake)
                deploys[rows].append(d)
                logger.info(
                    "s9: %d rows, deploy %d: launch->warm %.0f ms (loadMs %.1f, sinceStartMs %.0f), rows %d, LML %d",
                    rows, r + 1, d.launch_to_warm_ms, d.load_ms, d.since_start_ms, d.rows, d.lml_calls,
                )  # fmt: skip
            if rows == scales[0]:
                reseed(url, catalog)  # cold again: the next walk takes a token for every LML call
                rtt = round_trip(ctx, url, fake)
    _report(result, deploys, rtt, worker_rtt)


def _report(
    result: ScenarioResult, deploys: dict[int, list[Deploy]], rtt: tuple[float | None, int], worker_rtt: list[object]
) -> None:
    add = result.add
    for rows, runs in deploys.items():
        label = f"{rows:,} rows"
        launch = [d.launch_to_warm_ms for d in runs]
        typical = median(launch)
        at_goal = rows == GOAL_ROWS
        add(
            f"{label}: host launch to every worker warm",
            typical,
            "ms",
            goal=f"≤ {GOAL_MS:,.0f} ms" if at_goal else "",
            passed=(typical is not None and typical <= GOAL_MS) if at_goal else None,
            samples=launch,
            note=f"{runs[-1].rows:,} stored row answers loaded per worker",
        )
        add(f"{label}: of which loading the answers (loadMs, slowest worker)", median([d.load_ms for d in runs]), "ms",
            samples=[d.load_ms for d in runs])  # fmt: skip
        add(f"{label}: worker start to warm (sinceStartMs, slowest worker)",
            median([d.since_start_ms for d in runs]), "ms")  # fmt: skip
        calls = max(d.lml_calls for d in runs)
        add(f"{label}: LML calls per redeploy (worst)", calls, "", goal="0", passed=calls == 0)
    value, calls = rtt
    add(
        "PostgreSQL round trip per LML token (mean, readiness limiter.tokens.round_trip_ms)",
        value,
        "ms",
        note=f"a --single-process host's cold walk of {calls} LML calls",
    )
    add("LML fake latency during that walk (context)", RTT_LML_MS, "ms")
    add(
        "round trip / LML latency",
        value / RTT_LML_MS if value is not None else None,
        "",
        goal="≪ 1 (informational)",
    )
    add(
        "2-worker host after its walk: workers' readiness round_trip_ms (context)",
        ", ".join("null" if v is None else f"{v}" for v in worker_rtt),
        "",
        note="the walk's tokens are taken in the main process, which has no readiness",
    )
    result.notes += [
        f"Catalogs: the demo's active rows copied to N rows (scenario 6's), without the designed-transient rows "
        "(LML timeout/degraded answers are never stored, so a restarted walker retries them by design; leaving them "
        "out of the catalog makes 'no LML call per redeploy' exact). A first host walks the cold catalog (LML fake at "
        f"{LML_MS:.0f} ms) and stops; then each deploy starts a {WORKERS}-worker host on the stored answers.",
        "Launch to warm: from just before the host's process is spawned to the timestamp of the last worker's "
        "worker_warm ... beforeServing=true line (log lines carry milliseconds). It includes Sanic's main process "
        "start (imports, schema check) and spawning the workers, which sinceStartMs leaves out; loadMs is the load of "
        "the stored answers itself.",
        "LML calls per redeploy: what the fake received from the launch until every worker logged worker_warm and the "
        "walker logged its first pass's done: line.",
        f"Round trip: limiter.tokens.round_trip_ms from /health/ready after a cold walk of the 310-row catalog by a "
        f"--single-process host (its worker runs the walk, so its limiter took every token) with the LML fake at "
        f"{RTT_LML_MS:.0f} ms. In a multi-worker host the walk runs in the main process and its round trips are not "
        "in any worker's readiness (see the context line).",
    ]
