"""Bench-side helpers around ``devtools.processes``: the benchmark host's environment and its readiness waits."""

from __future__ import annotations

import datetime
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.pg import last_answer_seq
from devtools.auth_issuer import AuthIssuer
from devtools.processes import WARM, FakeProcess, Process, ServerProcess, fields, server_env

logger = logging.getLogger("bench")

# Workers log a line once every stored answer is loaded, before they accept connections.
WORKER_WARM = WARM + r"worker_warm: worker=(?!main\b)\S+ .*beforeServing=true"
DONE = WARM + r"done: worker=main "
_METRICS_DIR_PREFIX = "rotation-picker-metrics-"
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")

# Everything this run's processes may leave in the temp directory: their logs, and each host's metrics folder.
_logs: set[Path] = set()
_host_pids: set[int] = set()


def track(process: Process) -> None:
    """Remember a started process, so :func:`left_behind` can check that it cleaned up after itself."""
    _logs.add(process.log.path)
    if isinstance(process, ServerProcess) and process.proc is not None:
        _host_pids.add(process.proc.pid)


def left_behind() -> list[Path]:
    """Logs and metrics folders of this run's processes still in the temp directory."""
    base = Path(tempfile.gettempdir())
    folders = [p for pid in sorted(_host_pids) for p in base.glob(f"{_METRICS_DIR_PREFIX}{pid}-*")]
    return sorted(p for p in _logs if p.exists()) + folders


def bench_env(database_url: str, lml_url: str, issuer: AuthIssuer, **extra: str) -> dict[str, str]:
    """The benchmark host: the rate never binds (unless a scenario sets it), the floor route, station auth."""
    settings = {
        "LML_CLIENT_RATE_PER_MIN": "1000000",
        "BENCH_ROUTES": "true",
        "BETTER_AUTH_ISSUER": issuer.issuer,
        "BETTER_AUTH_AUDIENCE": issuer.audience,
        "BETTER_AUTH_JWKS_URL": issuer.jwks_url,
    }
    return server_env(database_url, lml_url, **{**settings, **extra})


def start_host(
    env: Mapping[str, str], workers: int, *, inspector_port: int | None = None, headers: Mapping[str, str]
) -> ServerProcess:
    """Launch ``sanic server:app`` (not waited for); its own requests carry ``headers``."""
    host = ServerProcess(env, workers, inspector_port=inspector_port, name="bench-host")
    host.headers.update(headers)
    try:
        host.start()
        track(host)
        return host
    except BaseException:
        stop_host(host)
        raise


def stop_host(host: ServerProcess) -> int:
    """Stop the host, delete its log, and check that it removed its metrics folder; return its exit code."""
    main_pid = host.proc.pid if host.proc is not None else None
    code = host.stop()
    host.close()
    if main_pid is not None:
        for left in Path(tempfile.gettempdir()).glob(f"{_METRICS_DIR_PREFIX}{main_pid}-*"):
            logger.warning("host pid=%d exited rc=%d and left its metrics folder %s: removing it", main_pid, code, left)
            shutil.rmtree(left, ignore_errors=True)
    return code


def log_time(line: str) -> float | None:
    """The wall-clock time (epoch seconds) a backend log line was written, from its timestamp."""
    m = _LOG_TIME.match(line)
    if m is None:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def wait_worker_warm(server: ServerProcess, *, since: int = 0, timeout: float = 120.0) -> list[dict[str, str]]:
    """Every worker's ``worker_warm ... beforeServing=true`` line (after line ``since``), as fields."""
    lines = server.wait_for_log(WORKER_WARM, max(server.workers, 1), timeout, since=since)
    return [fields(line) for line in lines]


def wait_followed(server: ServerProcess, url: str, timeout: float = 120.0) -> None:
    """Wait until every worker has loaded every answer stored so far (its follower's cursor)."""
    target = last_answer_seq(url)
    deadline = time.monotonic() + timeout
    while True:
        cursors = {w: r.json()["warm"]["worker"]["cursor"] for w, r in server.per_worker("/health/ready").items()}
        if len(cursors) >= max(server.workers, 1) and min(cursors.values()) >= target:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers did not follow the stored answers to seq {target}: {cursors}")
        time.sleep(0.05)


def wait_walk(
    server: ServerProcess,
    url: str,
    *,
    passes: int = 1,
    since: int = 0,
    timeout: float = 300.0,
    walker: str = "main",
) -> dict[str, str]:
    """Wait for the walker's pass number ``passes`` (its ``done:`` line) and every worker to hold its answers.

    Args:
        walker: the walking process's name pattern (``main``; a ``--single-process`` worker walks itself).

    Returns:
        The ``key=value`` fields of the ``done:`` line (``elapsedMs``, the counters, ``pendingRetries``).
    """
    done = server.wait_for_log(WARM + rf"done: worker={walker} ", passes, timeout, since=since)[passes - 1]
    wait_followed(server, url, timeout)
    return fields(done)


def readiness(server: ServerProcess) -> dict[str, Any]:
    """One worker's ``/health/ready`` body."""
    body: dict[str, Any] = server.get_fresh("/health/ready").json()
    return body


def calls_until(fake: FakeProcess, until: float | None) -> tuple[int, int]:
    """(lookups, release fetches) the fake received since its last reset, up to wall-clock time ``until``."""
    if until is None:
        return fake.calls()
    times = fake.stats()["call_times"]
    lookups = sum(1 for t, endpoint in times if endpoint == "lookup" and t <= until)
    releases = sum(1 for t, endpoint in times if endpoint == "release" and t <= until)
    return lookups, releases
