"""Scenario 5: a restarted worker's time from start to warm (sinceStartMs) and the LML calls it makes."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

from bench.context import BenchContext
from bench.procs import ROOT, WARM, fields, free_port
from bench.results import ScenarioResult, median

logger = logging.getLogger("bench")

WORKERS = 2
LML_MS = 2.0
SETTLE_S = 1.0


def run(ctx: BenchContext, result: ScenarioResult) -> None:
    spec = ctx.spec()
    catalog = spec.build()
    since: list[float] = []
    load_ms: list[float] = []
    load_cpu_ms: list[float] = []
    serving: list[float] = []
    calls = 0
    entries = ""
    reloads = max(ctx.runs, 3)
    inspector = free_port()
    with ctx.pg.database("s5", catalog) as url, ctx.fake(spec, LML_MS) as fake:
        with ctx.server(url, fake, workers=WORKERS, inspector_port=inspector) as server:
            server.wait_walk()
            for r in range(reloads):
                mark = server.mark()
                fake.reset()
                started = time.monotonic()
                cmd = [
                    sys.executable,
                    "-m",
                    "sanic",
                    "inspect",
                    "reload",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(inspector),
                ]
                done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"sanic inspect reload failed: {done.stdout}{done.stderr}")
                lines = server.wait_for_log(WARM + r"worker_warm: .* beforeServing=true", WORKERS, 90, since=mark)
                server.wait_for_log(r"worker serving worker=", WORKERS, 90, since=mark)
                serving.append(time.monotonic() - started)
                time.sleep(SETTLE_S)  # observation window for calls a new worker might make
                lookups, releases = fake.calls()
                calls += lookups + releases
                values = [float(fields(line)["sinceStartMs"]) for line in lines]
                since += values
                load_ms += [float(fields(line)["loadMs"]) for line in lines if "loadMs" in fields(line)]
                load_cpu_ms += [float(fields(line)["loadCpuMs"]) for line in lines if "loadCpuMs" in fields(line)]
                entries = fields(lines[0]).get("entries", "")
                logger.info("s5: reload %d sinceStartMs=%s LML calls=%d", r + 1, values, lookups + releases)
    worst = max(since) if since else None
    typical = median(since)
    result.add(
        "restarted worker: start to warm (median)",
        typical,
        "ms",
        goal="≤ 50 ms",
        passed=typical is not None and typical <= 50,
        samples=since,
    )
    result.add("restarted worker: start to warm (worst)", worst, "ms")
    if load_ms:  # logged by newer servers: the replay itself, inside sinceStartMs
        result.add("of which replaying the log (loadMs, median)", median(load_ms), "ms", samples=load_ms)
    if load_cpu_ms:  # CPU the replay used: the wall time above also counts waiting for a core
        result.add("replay CPU time (loadCpuMs, median)", median(load_cpu_ms), "ms", samples=load_cpu_ms)
    result.add("LML calls by restarted workers", calls, "", goal="0", passed=calls == 0)
    result.add("reload command to all new workers serving (context)", median(serving), "s", samples=serving)
    result.notes.append(
        f"{reloads} x `sanic inspect reload` of {WORKERS} workers after the walk of the 310-row demo; sinceStartMs "
        f"from each new worker's worker_warm line (beforeServing=true; from its first before_server_start "
        f"listener, so process spawn and imports are not included); log entries replayed: {entries}."
    )
