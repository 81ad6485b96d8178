"""Scenario 6: 310, 3,000 and 30,000 active rows: walk time per row, RSS per worker, caches, warm-hit latency."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil

from devtools.demo_catalog import DemoCatalog
from bench.catalogs import cacheable_active_ids
from bench.context import BenchContext
from bench.load import LoadResult, run_wrk
from bench.pg import reseed
from bench.procs import WARM, FakeProcess, ServerProcess, fields
from bench.results import ScenarioResult, median

logger = logging.getLogger("bench")

LML_MS = 1.0
WORKERS = 2
WRK_CONNECTIONS = 8
MB = 1024 * 1024


@dataclass
class Boot:
    rows: int
    elapsed_ms: int
    rss_mb: list[float]
    main_rss_mb: float
    caches_ok: bool
    cache_note: str
    load: LoadResult | None = None
    lml_calls_during_load: int = 0


def _rss(server: ServerProcess) -> tuple[list[float], float]:
    workers = [psutil.Process(pid).memory_info().rss / MB for pid in server.worker_pids().values()]
    return workers, psutil.Process(server.main_pid()).memory_info().rss / MB


def _caches(server: ServerProcess, rows: int) -> tuple[bool, str]:
    """Every worker's row cache holds what it replayed, grew past 500, and never evicted."""
    loaded = {fields(line)["worker"]: int(fields(line)["rows"]) for line in server.wait_for_log(WARM + "worker_warm: ")}
    ok, notes = True, []
    for worker, body in sorted(server.per_worker("/health/ready").items()):
        rotation = body["caches"]["rotation"]
        release = body["caches"]["release"]["positive"]
        ok &= rotation["evictions"] == 0 and release["evictions"] == 0 and rotation["size"] == loaded.get(worker)
        ok &= rotation["maxsize"] >= rows
        notes.append(
            f"{worker}: rows {rotation['size']}/{rotation['maxsize']} (replayed {loaded.get(worker)}), "
            f"releases {release['size']}/{release['maxsize']}, evictions {rotation['evictions']}+{release['evictions']}"
        )
    return ok and len(notes) == WORKERS, "; ".join(notes)


def boot(ctx: BenchContext, url: str, fake: FakeProcess, catalog: DemoCatalog, rows: int, load_s: float | None) -> Boot:
    """One boot on pristine rows: walk, RSS, caches, and (when ``load_s``) a warm-hit wrk run."""
    reseed(url, catalog)
    fake.reset()
    with ctx.server(url, fake, workers=WORKERS) as server:
        done = server.wait_walk(timeout=1200)
        rss, main_rss = _rss(server)
        caches_ok, note = _caches(server, rows)
        result = Boot(rows, int(done["elapsedMs"]), rss, main_rss, caches_ok, note)
        if load_s:
            paths = [f"/library/rotation/{i}/tracks" for i in cacheable_active_ids(catalog)]
            fake.reset()
            result.load = run_wrk(server.url, paths, load_s, WRK_CONNECTIONS, ctx.tmp)
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
        spec = ctx.spec("scale", rows=rows, killed_copies=0)
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
        result.add(f"{label}: RSS of the main process (walk + log)", median([b.main_rss_mb for b in boots]), "MB")
        result.add(
            f"{label}: caches follow the row count (no eviction)",
            "yes" if all(b.caches_ok for b in boots) else "no",
            goal="yes",
            passed=all(b.caches_ok for b in boots),
            note=last.cache_note,
        )
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
    result.notes.append(
        f"Synthetic catalogs: the demo's active rows copied with album '… (Vol. k)' and per-copy release ids (the fake "
        f"serves the same catalog). LML fake at {LML_MS:.0f} ms. {WORKERS} workers, default ROTATION_CACHE_MAX=500. "
        f"Walk time per row = elapsedMs / rows ({ctx.runs} boot(s) each below 30,000 rows, 1 at 30,000). Warm hits: "
        f"wrk for {load_s:.0f} s over every cacheable active row."
    )
