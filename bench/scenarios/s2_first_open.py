"""Scenario 2: median first-open latency of tier-3 rows with the warmer off vs on (LML fake at 150 ms)."""

from __future__ import annotations

import logging
import time

from bench.catalogs import ids_where
from bench.context import BenchContext
from bench.hosts import wait_walk
from bench.pg import reseed
from bench.results import ScenarioResult, median
from devtools import demo_catalog as dc
from devtools.demo_catalog import DemoCatalog
from devtools.processes import FakeProcess, ServerProcess

logger = logging.getLogger("bench")

LML_MS = 150.0
WALK_LML_MS = 5.0  # the warm boot walks fast; first opens then run with LML back at 150 ms
WORKERS = 2


def sample_rows(catalog: DemoCatalog, per_kind: int) -> list[int]:
    """``per_kind`` inline rows and ``per_kind`` release rows, no two sharing a release (no list duplicates)."""
    originals = {i + 1 for i, r in enumerate(catalog.rotation) if r.duplicate is None}
    inline = [rid for rid in ids_where(catalog, active=True, kinds=(dc.LML_INLINE,)) if rid in originals][:per_kind]
    seen: set[int] = set()
    release_rows: list[int] = []
    for rid in ids_where(catalog, active=True, kinds=(dc.LML_RELEASE,)):
        row = catalog.rotation[rid - 1]
        if rid not in originals:
            continue
        key = row.lml_key
        fixture = catalog.lookups.get(key) if key else None
        release = fixture.results[0].artwork.release_id if fixture and fixture.results[0].artwork else None
        if release is not None and release not in seen:
            seen.add(release)
            release_rows.append(rid)
        if len(release_rows) == per_kind:
            break
    return inline + release_rows


def first_opens(server: ServerProcess, ids: list[int]) -> list[float]:
    """Open each row once, one after another, on a new connection each; latencies in ms."""
    latencies = []
    for rid in ids:
        started = time.perf_counter()
        response = server.get_fresh(f"/library/rotation/{rid}/tracks")
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or not response.json():
            raise RuntimeError(f"row {rid}: {response.status} {response.content[:200]!r}")
    return latencies


def _boot(
    ctx: BenchContext, url: str, fake: FakeProcess, catalog: DemoCatalog, ids: list[int], warm: bool
) -> tuple[list[float], int]:
    """One cold boot (no stored answers) with the warmer off or on; the first-open latencies and their LML calls."""
    reseed(url, catalog)
    fake.set_latency(WALK_LML_MS if warm else LML_MS)
    with ctx.server(url, fake, workers=WORKERS, WARM_ENABLED="true" if warm else "false") as server:
        if warm:
            wait_walk(server, url)
            fake.set_latency(LML_MS)
        fake.reset()
        latencies = first_opens(server, ids)
        lookups, releases = fake.calls()
    return latencies, lookups + releases


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    spec = ctx.spec(stable=True)
    catalog = spec.build()
    per_kind = 5 if ctx.quick else 10
    ids = sample_rows(catalog, per_kind)
    # Per state, per run: median over all sampled rows, over the inline ones, over the release ones.
    medians: dict[str, dict[str, list[float]]] = {s: {"all": [], "inline": [], "release": []} for s in ("off", "on")}
    warm_calls = 0
    with ctx.pg.database("s2", catalog) as url, ctx.fake(spec, LML_MS) as fake:
        for r in range(ctx.runs):
            for state in ("off", "on") if r % 2 == 0 else ("on", "off"):
                latencies, calls = _boot(ctx, url, fake, catalog, ids, warm=state == "on")
                warm_calls += calls if state == "on" else 0
                m = medians[state]
                m["all"].append(median(latencies) or 0.0)
                m["inline"].append(median(latencies[:per_kind]) or 0.0)
                m["release"].append(median(latencies[per_kind:]) or 0.0)
                logger.info("s2: run %d warmer %s: median %.1f ms (inline %.1f, via release %.1f)",
                            r + 1, state, m["all"][-1], m["inline"][-1], m["release"][-1])  # fmt: skip
    for state, label in (("off", "warmer off"), ("on", "warmer on")):
        m = medians[state]
        result.add(f"first open, {label} (median)", median(m["all"]), "ms", samples=m["all"])
        result.add(
            f"first open, {label}: inline / via release fetch",
            f"{median(m['inline']):.1f} / {median(m['release']):.1f}",
            "ms",
            note=f"LML cost alone: {LML_MS:.0f} ms (1 lookup) / {2 * LML_MS:.0f} ms (lookup + release fetch)"
            if state == "off"
            else "",
        )
    cold_ms, warm_ms = median(medians["off"]["all"]), median(medians["on"]["all"])
    speedup = cold_ms / warm_ms if cold_ms and warm_ms else None
    result.add("what the warmer buys: off / on", speedup, "x", goal="warm ≪ cold (informational)")
    result.add("LML calls during warm first opens", warm_calls, "", goal="0", passed=warm_calls == 0)
    result.notes.append(
        f"{2 * per_kind} tier-3 active rows per boot ({per_kind} inline tracklist, {per_kind} via a release fetch), "
        "each opened once on a new connection (http.client) with a DJ's token; LML fake at "
        f"{LML_MS:.0f} ms, no jitter. Every boot starts cold (station rows reseeded, no stored answers). Warmer-on "
        f"boots walk with the fake at {WALK_LML_MS:.0f} ms, then set it back to {LML_MS:.0f} ms before the opens "
        "(a warm open calls no LML). Demo catalog without its 3 designed-transient rows, whose timed retries by the "
        "walker would otherwise count as LML calls of the warm opens."
    )
