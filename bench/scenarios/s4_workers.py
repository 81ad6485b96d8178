"""Scenario 4: LML lookups and release fetches per boot for 1, 2 and 4 workers (goal: equal)."""

from __future__ import annotations

import logging
import time

from bench.context import BenchContext
from bench.pg import reseed
from bench.results import ScenarioResult

logger = logging.getLogger("bench")

WORKER_COUNTS = (1, 2, 4)
LATENCY_MS = 2.0
SETTLE_S = 1.0


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    spec = ctx.spec()
    catalog = spec.build()
    calls: dict[int, tuple[int, int]] = {}
    with ctx.pg.database("s4", catalog) as url, ctx.fake(spec, LATENCY_MS) as fake:
        for workers in WORKER_COUNTS:
            reseed(url, catalog)
            fake.reset()
            with ctx.server(url, fake, workers=workers) as server:
                server.wait_walk()
                time.sleep(SETTLE_S)  # an observation window: a worker asking LML on its own would show here
                calls[workers] = fake.calls()
            logger.info("s4: workers=%d lookups=%d releases=%d", workers, *calls[workers])
    equal = len(set(calls.values())) == 1
    for workers, (lookups, releases) in calls.items():
        result.add(
            f"LML calls per boot, {workers} worker(s): lookups / release fetches",
            f"{lookups} / {releases}",
            goal="equal for N = 1, 2, 4",
            passed=equal,
        )
    result.notes.append(
        f"Demo catalog (310 active rows), LML fake at {LATENCY_MS:.0f} ms; counts read after every worker is warm."
    )
