"""Scenario 6: 310, 3,000 and 30,000 active rows: walk time per row, RSS per worker, caches, warm-hit latency."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil

from bench.catalogs import cacheable_active_ids
from bench.context import BenchContext
from bench.hosts import wait_walk
from bench.load import LoadResult, run_wrk
from bench.pg import reseed
from bench.results import ScenarioResult, median
from devtools.demo_catalog import DemoCatalog
from devtools.processes import FakeProcess, ServerProcess

logger = logging.getLogger("bench")

LML_MS = 1.0
WORKERS = 2
WRK_CONNECTIONS = 8
MB = 1024 * 1024
WALK_TIMEOUT_S = 3600.0  # 30,000 rows


@dataclass
class Boot:
    rows: int
    elapsed_ms: int
    rss_mb: list[float]
    main_rss_mb: float
    caches_ok: bool
    caches_complete: bool
    cache_note: str
    held: str
    load: LoadResult | None = None
    lml_calls_during_load: int = 0


def _rss(server: ServerProcess) -> tuple[list[float], float]:
    workers = [psutil.Process(pid).memory_info().rss / MB for pid in server.worker_pids().values()]
    return workers, psutil.Process(server.pid).memory_info().rss / MB


def _caches(server: ServerProcess, rows: int) -> tuple[bool, bool, str, str]:
    """No cache evicted and the row cache grew to the row count; every worker holds every stored answer; details."""
    sized, complete, notes, held = True, True, [], []
    for worker, response in sorted(server.per_worker("/health/ready").items()):
        body = response.json()
        caches, stored = body["caches"], body["warm"]["stored"]
        rotation, release = caches["rotation"], caches["release_positive"]
        evictions = sum(c["evictions"] for c in caches.values())
        sized &= evictions == 0 and rotation["maxsize"] >= rows
        complete &= rotation["size"] == stored["rows"]
        held.append(f"{rotation['size']:,}")
        notes.append(
            f"{worker}: rows {rotation['size']}/{rotation['maxsize']} (stored {stored['rows']}), "
            f"releases {release['size']}/{release['maxsize']} (stored {stored['releases']}), evictions {evictions}"
        )
    found = len(notes) == WORKERS
    summary = f"workers hold {' and '.join(held)} of {stored['rows']:,} stored row answers" if found else ""
    return sized and found, complete and found, "; ".join(notes), summary


def boot(ctx: BenchContext, url: str, fake: FakeProcess, catalog: DemoCatalog, rows: int, load_s: float | None) -> Boot:
    """One cold boot (pristine rows, no stored answers): walk, RSS, caches, and (when ``load_s``) a warm-hit wrk run."""
    reseed(url, catalog)
    fake.reset()
    with ctx.server(url, fake, workers=WORKERS) as server:
        done = wait_walk(server, url, timeout=WALK_TIMEOUT_S)
        rss, main_rss = _rss(server)
        caches_ok, complete, note, held = _caches(server, rows)
        result = Boot(rows, int(done["elapsedMs"]), rss, main_rss, caches_ok, complete, note, held)
        if load_s:
            paths = [f"/library/rotation/{i}/tracks" for i in cacheable_active_ids(catalog)]
            fake.reset()
            result.load = run_wrk(server.url, paths, load_s, WRK_CONNECTIONS, ctx.tmp, ctx.auth)
            result.lml_calls_during_load = sum(fake.calls())
    logger.info(
        "s6: rows=%d elapsedMs=%d perRow=%.2fms rss=%s caches_ok=%s",
        rows,
        result.elapsed_ms,
        result.elapsed_ms / rows,
        [round(r) for r in rss],
        caches_ok,
    )
    return result


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    scales = (310, 3000) if ctx.quick else (310, 3000, 30000)
    load_s = ctx.seconds(5, 3)
    per_row: dict[int, float] = {}
    for rows in scales:
        spec = ctx.spec("scale", rows=rows, killed_copies=0, stable=True)
        catalog = spec.build()
        runs = 1 if rows >= 30000 else ctx.runs
        boots = []
        with ctx.pg.database(f"s6_{rows}", catalog) as url, ctx.fake(spec, LML_MS) as fake:
            for r in range(runs):
                boots.append(boot(ctx, url, fake, catalog, rows, load_s if r == runs - 1 else None))
        samples = [b.elapsed_ms / rows for b in boots]
        per_row[rows] = median(samples) or 0.0
        last = boots[-1]
        label = f"{rows:,} rows"
        result.add(f"{label}: walk time per row", per_row[rows], "ms", samples=samples)
        result.add(f"{label}: walk elapsed", median([float(b.elapsed_ms) for b in boots]), "ms")
        result.add(f"{label}: RSS per worker after warm", median([r for b in boots for r in b.rss_mb]), "MB")
        result.add(f"{label}: RSS of the main process (walker thread)", median([b.main_rss_mb for b in boots]), "MB")
        result.add(
            f"{label}: caches follow the row count (no eviction)",
            "yes" if all(b.caches_ok for b in boots) else "no",
            goal="yes",
            passed=all(b.caches_ok for b in boots),
        )
        result.add(
            f"{label}: every worker's row cache holds every stored answer",
            "yes" if all(b.caches_complete for b in boots) else "no",
            goal="yes",
            passed=all(b.caches_complete for b in boots),
            note=last.held,
        )
        result.notes.append(f"{label}, caches after the walk: {last.cache_note}.")
        if last.load is not None:
            result.add(
                f"{label}: warm hit p50 / p99 (wrk, {last.load.rps:,.0f} req/s)",
                f"{last.load.p50_ms:.2f} / {last.load.p99_ms:.2f}",
                "ms",
            )
            result.add(f"{label}: LML calls during warm hits", last.lml_calls_during_load, "", goal="0",
                       passed=last.lml_calls_during_load == 0)  # fmt: skip
    first, last_rows = min(per_row), max(per_row)
    growth = per_row[last_rows] / per_row[first] if per_row[first] else None
    result.add(
        f"per-row walk time {last_rows:,} / {first:,} rows",
        growth,
        "",
        goal="≤ 1.25 (flat)",
        passed=growth is not None and growth <= 1.25,
    )
    result.notes.insert(
        0,
        f"Synthetic catalogs: the demo's active rows (without its designed-transient ones, which the walker retries "
        f"on a timer) copied with album '… (Vol. k)' and per-copy release ids (the fake serves the same catalog). LML "
        f"fake at {LML_MS:.0f} ms. {WORKERS} workers, default ROTATION_CACHE_MAX=500 (caches grow to the active row "
        f"count). Cold boots; walk time per row = the first pass's elapsedMs / rows ({ctx.runs} boot(s) each below "
        f"30,000 rows, 1 at 30,000). Caches are read from every worker's /health/ready once the pass is done and every "
        f"worker's follower cursor has reached the last stored answer: no eviction in any cache and a row cache bound "
        f"≥ the row count; then each worker's row cache must hold exactly the stored row answers (warm.stored.rows). "
        f"Warm hits: wrk for "
        f"{load_s:.0f} s over every active row, with a DJ's token. A release LML answers 404 is stored for "
        "RELEASE_NEGATIVE_TTL_S (600 s) and the walk leaves expired 404s to live opens: when the pass lasts longer "
        "than that (30,000 rows), warm hits on rows whose release is a 404 ask LML again.",
    )
