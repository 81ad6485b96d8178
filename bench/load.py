"""Load generators in their own processes: wrk (closed loop, max throughput) and bench.rategen (fixed rate)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import ROOT

logger = logging.getLogger("bench")

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_apt_tried = False


@dataclass(frozen=True)
class LoadResult:
    """One load run: throughput, latency percentiles (ms) and failures."""

    tool: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: int
    target_rate: float | None = None
    send_lag_p99_ms: float | None = None
    service_p99_ms: float | None = None


def ensure_wrk() -> str | None:
    """Path to wrk; as root, try ``apt-get install -y wrk`` once when it is missing."""
    global _apt_tried
    found = shutil.which("wrk")
    if found or _apt_tried or os.geteuid() != 0:
        return found
    _apt_tried = True
    logger.info("wrk not found: trying apt-get install -y wrk")
    for cmd in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired):
            break
        if cmd[1] == "install" and done.returncode == 0:
            break
    return shutil.which("wrk")


def write_paths(paths: Sequence[str], directory: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix="paths-", suffix=".txt", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write("\n".join(paths) + "\n")
    return Path(name)


def _lua(paths: Sequence[str], directory: Path) -> Path:
    """A wrk script that cycles through ``paths`` (each wrk thread from its own offset)."""
    body = ",\n".join(json.dumps(p) for p in paths)
    script = f"""local paths = {{
{body}
}}
local n = #paths
local i = 0
function init(args)
  i = (tonumber(args[1]) or 0) % n
end
function request()
  i = i % n + 1
  return wrk.format("GET", paths[i])
end
"""
    handle, name = tempfile.mkstemp(prefix="wrk-", suffix=".lua", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(script)
    return Path(name)


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(output: str) -> LoadResult:
    """Requests/sec, the 50 % and 99 % latency lines, and the error counts of ``wrk --latency``."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    pct = {m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    total = re.search(r"(\d+) requests in", output)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return LoadResult(
        tool="wrk",
        rps=float(rps.group(1)),
        p50_ms=pct.get("50"),
        p99_ms=pct.get("99"),
        requests=int(total.group(1)) if total else 0,
        errors=errors + (int(non2xx.group(1)) if non2xx else 0),
    )


def _header_args(flag: str, headers: Mapping[str, str] | None) -> list[str]:
    return [arg for name, value in (headers or {}).items() for arg in (flag, f"{name}: {value}")]


def run_wrk(
    url: str,
    paths: Sequence[str],
    duration: float,
    connections: int,
    directory: Path,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Max throughput over ``paths`` with wrk (1 thread); the Python closed loop when wrk is missing.

    ``headers`` go on every request (``-H``), e.g. the DJ's ``Authorization``.
    """
    wrk = ensure_wrk()
    if wrk is None:
        port = int(url.rsplit(":", 1)[1])
        return run_rategen(
            port, paths, rate=0, duration=duration, connections=connections, directory=directory, headers=headers
        )
    script = _lua(paths, directory)
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout", "10s", "-s", str(script)]
    cmd += _header_args("-H", headers)
    try:
        done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60, check=False)
    finally:
        script.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed rc={done.returncode}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def run_rategen(
    port: int,
    paths: Sequence[str],
    *,
    rate: float,
    duration: float,
    connections: int,
    directory: Path,
    warmup: float = 1.0,
    once: bool = False,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """``bench.rategen`` as a separate process; ``rate=0`` means closed loop (max throughput)."""
    paths_file = write_paths(paths, directory)
    cmd = [sys.executable, "-m", "bench.rategen", f"--port={port}", f"--paths-file={paths_file}"]
    cmd += [f"--duration={duration}", f"--connections={connections}", f"--warmup={warmup}"]
    cmd += ["--closed"] if rate <= 0 else [f"--rate={rate}"]
    cmd += ["--once"] if once else []
    cmd += _header_args("--header", headers)
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=duration + warmup + 90, check=False
        )
    finally:
        paths_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"rategen failed rc={done.returncode}: {done.stderr[-2000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(
        tool="rategen-" + r["mode"],
        rps=r["achieved_rate"],
        p50_ms=r["p50_ms"],
        p99_ms=r["p99_ms"],
        requests=r["completed"],
        errors=r["errors"] + r["non_2xx"],
        target_rate=r["target_rate"],
        send_lag_p99_ms=r["send_lag_p99_ms"],
        service_p99_ms=r["service_p99_ms"],
    )
