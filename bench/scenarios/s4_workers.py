"""Scenario 4: LML lookups and release fetches per boot for 1, 2 and 4 workers (goal: equal)."""

from __future__ import annotations

import logging

from bench.context import BenchContext
from bench.hosts import wait_walk
from bench.pg import reseed
from bench.results import ScenarioResult

logger = logging.getLogger("bench")

WORKER_COUNTS = (1, 2, 4)
LATENCY_MS = 2.0


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    spec = ctx.spec(stable=True)
    catalog = spec.build()
    calls: dict[int, tuple[int, int]] = {}
    with ctx.pg.database("s4", catalog) as url, ctx.fake(spec, LATENCY_MS) as fake:
        for workers in WORKER_COUNTS:
            reseed(url, catalog)
            fake.reset()
            with ctx.server(url, fake, workers=workers) as server:
                # Counted once the walk's first pass is done and every worker holds every stored answer:
                # a worker asking LML on its own while warming up would show here.
                wait_walk(server, url)
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
        f"Cold boots (reseeded station rows, no stored answers) of one host with N workers; demo catalog without its 3 "
        f"designed-transient rows (the walker retries those on a timer, so their count depends on time, not on N); LML "
        f"fake at {LATENCY_MS:.0f} ms. Counts read once the walker's first pass is done and every worker has loaded "
        "every answer stored so far (its follower's cursor, from /health/ready)."
    )
