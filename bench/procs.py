"""The processes a scenario runs: ``sanic server:app --workers N`` and the LML fake, each with its own log."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.catalogs import CatalogSpec

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WARM = r"\[rotation-tracks-cache-warm\] "
ACK_GRACE_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fields(line: str) -> dict[str, str]:
    """``key=value`` pairs of a log line."""
    return dict(re.findall(r"(\w+)=(\S+)", line))


class LogFile:
    """A process's combined stdout/stderr in a temp file, read incrementally as lines."""

    def __init__(self, prefix: str) -> None:
        self.file = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log", delete=False)  # noqa: SIM115
        self.path = Path(self.file.name)
        self._pos = 0
        self._partial = b""
        self.lines: list[str] = []

    def read(self) -> list[str]:
        with self.path.open("rb") as f:
            f.seek(self._pos)
            chunk = f.read()
        self._pos += len(chunk)
        parts = (self._partial + chunk).split(b"\n")
        self._partial = parts.pop()
        self.lines.extend(ANSI.sub("", p.decode(errors="replace")) for p in parts)
        return self.lines

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.read()[-n:])

    def close(self) -> None:
        self.file.close()


class Process:
    """A child process in its own session, stopped with SIGTERM then SIGKILL of its group."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.log = LogFile(f"rp-bench-{name}-")
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log.file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 60.0, since: int = 0) -> list[str]:
        """Wait until ``pattern`` matched ``count`` lines from line index ``since`` on; return them."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            lines = [line for line in self.log.read()[since:] if regex.search(line)]
            if len(lines) >= count:
                return lines
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited rc={self.proc.returncode}:\n{self.log.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {pattern!r} x{count} not seen in {timeout:.0f}s:\n{self.log.tail()}")
            time.sleep(0.02)

    def mark(self) -> int:
        """The current line count, to wait only for lines logged after this point."""
        return len(self.log.read())

    def stop(self, timeout: float = 30.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            try:  # workers or helpers left behind in the group
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()
        self.log.path.unlink(missing_ok=True)


class FakeProcess(Process):
    """``python -m bench.fake`` on a catalog, with its ``/_admin`` API."""

    def __init__(self, spec: CatalogSpec, latency_ms: float, jitter_ms: float = 0.0) -> None:
        super().__init__("lml-fake")
        self.spec = spec
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.url = ""
        self._http: httpx.Client | None = None

    def start(self, timeout: float = 60.0) -> FakeProcess:
        cmd = [
            sys.executable,
            "-m",
            "bench.fake",
            *self.spec.cli_args(),
            "--port=0",
            f"--latency-ms={self.latency_ms}",
            f"--jitter-ms={self.jitter_ms}",
        ]
        self.spawn(cmd, {**os.environ, "PYTHONUNBUFFERED": "1"})
        line = self.wait_for_log(r"lml-fake listening on ", timeout=timeout)[0]
        self.url = line.split("listening on ", 1)[1].strip()
        self._http = httpx.Client(base_url=self.url, timeout=10.0)
        return self

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self._http is not None
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "/_admin/stats")

    def calls(self) -> tuple[int, int]:
        """(lookups, release fetches) since the last reset."""
        counts = self.stats()["counts"]
        return int(counts["lookup"]), int(counts["release"])

    def reset(self) -> None:
        self._admin("POST", "/_admin/reset")

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        self._admin("POST", "/_admin/latency", {"latency_ms": latency_ms, "jitter_ms": jitter_ms})
        self.latency_ms, self.jitter_ms = latency_ms, jitter_ms

    def stop(self, timeout: float = 10.0) -> None:
        if self._http is not None:
            self._http.close()
        super().stop(timeout)


@dataclass(frozen=True)
class Response:
    """What :meth:`ServerProcess.get_fresh` read."""

    status: int
    worker: str
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


def server_env(database_url: str, lml_url: str, **extra: str) -> dict[str, str]:
    """The benchmark configuration: rate never binds, no live-DJ probe, INFO logs, the floor route."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "LIBRARY_METADATA_URL": lml_url,
        "LML_CLIENT_RATE_PER_MIN": "1000000",
        "WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS": "0",
        "MIGRATE_ON_START": "false",
        "LOG_LEVEL": "INFO",
        "BENCH_ROUTES": "true",
        **extra,
    }
    env.pop("SENTRY_DSN", None)
    return env


class ServerProcess(Process):
    """``sanic server:app --workers N`` on a free port.

    Args:
        env: the full environment (see :func:`server_env`).
        workers: worker processes.
        inspector_port: enable Sanic's inspector on this port (for ``sanic inspect reload``).
    """

    def __init__(self, env: dict[str, str], workers: int = 2, inspector_port: int | None = None) -> None:
        super().__init__("server")
        self.port = free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.inspector_port = inspector_port
        if inspector_port is not None:
            self.env.update(
                SANIC_INSPECTOR="true", SANIC_INSPECTOR_HOST="127.0.0.1", SANIC_INSPECTOR_PORT=str(inspector_port)
            )

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "sanic", "server:app", "--host", "127.0.0.1", "--port", str(self.port)]
        self.spawn([*cmd, "--workers", str(self.workers)], self.env)
        return self

    def wait_serving(self, timeout: float = 90.0) -> None:
        """Every worker serves and has acked to Sanic's manager, and the manager has seen the acks.

        A SIGTERM that reaches the main process while Sanic's manager is still in ``wait_for_ack``
        (it polls every 0.1 s; workers stopping never count as acked) hangs the main process until
        SIGKILL. The manager logs nothing when it leaves that loop, hence the short grace period.
        """
        self.wait_for_log(r"worker serving worker=", self.workers, timeout)
        self.wait_for_log(r"Worker ready \[\d+\]", self.workers, timeout)
        time.sleep(ACK_GRACE_S)

    def wait_walk(self, walks: int = 1, timeout: float = 300.0) -> dict[str, str]:
        """Wait for the host walk number ``walks`` and every worker's ``worker_warm`` for it.

        Returns:
            The ``key=value`` fields of the walk's ``done:`` line (``elapsedMs``, the counters).
        """
        self.wait_for_log(WARM + rf"host_walk_published: walks={walks} ", 1, timeout)
        self.wait_for_log(WARM + rf"worker_warm: worker=\S+ walk={walks} ", self.workers, timeout)
        done = self.wait_for_log(WARM + r"done: worker=main ", walks, timeout)[walks - 1]
        return fields(done)

    def worker_pids(self) -> dict[str, int]:
        """Worker name -> pid from the 'worker serving' lines (latest wins)."""
        pids: dict[str, int] = {}
        for line in self.log.read():
            m = re.search(r"worker serving worker=(\S+) pid=(\d+)", line)
            if m:
                pids[m.group(1)] = int(m.group(2))
        return pids

    def main_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def get_fresh(self, path: str, timeout: float = 30.0) -> Response:
        """One GET on a new connection (the kernel spreads new connections over the workers).

        Plain ``http.client``: building an httpx client per request costs tens of milliseconds.
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return Response(answer.status, answer.getheader("X-Worker") or "", answer.read())
        finally:
            conn.close()

    def per_worker(self, path: str, attempts: int = 60) -> dict[str, dict[str, Any]]:
        """``path``'s JSON from every live worker (fresh connections until each has answered)."""
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(attempts):
            response = self.get_fresh(path)
            seen.setdefault(response.worker, response.json())
            if len(seen) >= self.workers:
                break
        return seen
