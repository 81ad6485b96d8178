"""Scenario 7: p99 of live first opens of cold rows (LML 150 ms) while a walk runs vs with the warmer off."""

from __future__ import annotations

import logging

from bench.catalogs import TIER3, ids_where
from bench.context import BenchContext
from bench.hosts import DONE
from bench.load import LoadResult, run_rategen
from bench.pg import reseed
from bench.results import ScenarioResult, median
from devtools.processes import WARM

logger = logging.getLogger("bench")

LML_MS = 150.0
RATE = 4.0
ACTIVE_ROWS = 3000  # long enough that the walk is still running when the live load ends
WORKERS = 2
CONNECTIONS = 8


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    duration = ctx.seconds(20, 10)
    needed = int(RATE * duration)
    spec = ctx.spec("scale", rows=ACTIVE_ROWS, killed_copies=max(2, needed // 20 + 1))
    catalog = spec.build()
    cold = ids_where(catalog, active=False, kinds=TIER3)[:needed]
    if len(cold) < needed:
        raise RuntimeError(f"only {len(cold)} cold rows for {needed} opens")
    paths = [f"/library/rotation/{i}/tracks" for i in cold]
    runs: dict[str, list[LoadResult]] = {"off": [], "on": []}
    still_running = True
    with ctx.pg.database("s7", catalog) as url, ctx.fake(spec, LML_MS) as fake:
        for r in range(ctx.runs):
            for state in ("off", "on") if r % 2 == 0 else ("on", "off"):
                reseed(url, catalog)
                warm = "true" if state == "on" else "false"
                with ctx.server(url, fake, workers=WORKERS, WARM_ENABLED=warm) as server:
                    if state == "on":
                        server.wait_for_log(WARM + r"start: worker=main ")
                    load = run_rategen(
                        server.port, paths, rate=RATE, duration=duration, connections=CONNECTIONS,
                        directory=ctx.tmp, warmup=0, once=True, headers=ctx.auth,
                    )  # fmt: skip
                    if state == "on" and server.lines(DONE):
                        still_running = False
                runs[state].append(load)
                logger.info("s7: run %d walk %s: p50=%.0fms p99=%.0fms n=%d errors=%d",
                            r + 1, state, load.p50_ms or 0, load.p99_ms or 0, load.requests, load.errors)  # fmt: skip
    ratios = [
        on.p99_ms / off.p99_ms for on, off in zip(runs["on"], runs["off"], strict=True) if on.p99_ms and off.p99_ms
    ]
    for state, label in (("off", "no walk (warmer off)"), ("on", "during the walk")):
        p99s = [r.p99_ms for r in runs[state] if r.p99_ms is not None]
        result.add(f"live first-open p99, {label}", median(p99s), "ms", samples=p99s)
        result.add(f"live first-open p50, {label}", median([r.p50_ms for r in runs[state] if r.p50_ms]), "ms")
    ratio = median(ratios)
    result.add("p99 during walk / p99 without", ratio, "", goal="≤ 1.2", passed=ratio is not None and ratio <= 1.2,
               samples=ratios)  # fmt: skip
    errors = sum(r.errors for rs in runs.values() for r in rs)
    result.add("errors / non-2xx", errors, "", goal="0", passed=errors == 0)
    result.add("walk still running when the live load ended", "yes" if still_running else "no", goal="yes",
               passed=still_running)  # fmt: skip
    result.notes.append(
        f"{needed} distinct cold rows (killed rows, inline or via a release fetch: never walked, never opened) opened "
        f"once each at {RATE:.0f}/s open loop over {CONNECTIONS} connections, with a DJ's token; LML fake at "
        f"{LML_MS:.0f} ms, no jitter; LML_CLIENT_RATE_PER_MIN=1000000 (the rate never binds: scenario 8 runs at the "
        f"production rate); {ACTIVE_ROWS:,} active rows so the walk (one LML call at a time) outlasts the load. "
        "Warmer off vs on in alternating cold boots (reseeded rows, no stored answers)."
    )
