"""Real processes for the end-to-end tests and the benchmarks: ``sanic server:app`` hosts and the LML fake.

One helper for both (the e2e tests and ``bench/`` used to carry their own). Every process runs in
its own session (its pid is its process group), logs to a temp file that is deleted on ``stop``,
and is waited on through its log lines, never through sleeps.
"""

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WARM = r"\[rotation-tracks-cache-warm\] "


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

    def text(self) -> str:
        return "\n".join(self.read())

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.read()[-n:])

    def errors(self, since: int = 0) -> list[str]:
        """ERROR/CRITICAL lines and tracebacks from line ``since`` on, each with the 60 lines that follow it."""
        lines = self.read()
        return [
            "\n".join(lines[i : i + 60])
            for i in range(since, len(lines))
            if re.search(r"\b(ERROR|CRITICAL)\b|^Traceback|Traceback \(most recent", lines[i])
        ]

    def close(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class Process:
    """A child process in its own session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.log = LogFile(f"rp-{name}-")
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, cmd: list[str], env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=dict(env), stdout=self.log.file, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def mark(self) -> int:
        """The current line count, to wait only for lines logged after this point."""
        return len(self.log.read())

    def lines(self, pattern: str, since: int = 0) -> list[str]:
        regex = re.compile(pattern)
        return [line for line in self.log.read()[since:] if regex.search(line)]

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 60.0, since: int = 0) -> list[str]:
        """Wait until ``pattern`` matched ``count`` lines from line ``since`` on; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.lines(pattern, since)
            if len(found) >= count:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited rc={self.proc.returncode}:\n{self.log.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {pattern!r} x{count} not seen in {timeout:.0f}s:\n{self.log.tail()}")
            time.sleep(0.02)

    def signal(self, signum: int, *, group: bool = False) -> None:
        """Send ``signum`` to the main process, or to its whole process group (what systemd and Ctrl-C do)."""
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def wait_exit(self, timeout: float) -> int | None:
        """The main process's exit code, or None while it still runs after ``timeout``."""
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def group_pids(self) -> set[int]:
        """Live (non-zombie) processes of the process group, orphans included."""
        import psutil  # test and benchmark dependency only

        pids = set()
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if os.getpgid(proc.pid) == self.pid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    pids.add(proc.pid)
            except (ProcessLookupError, psutil.Error):
                continue
        return pids

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the main process, SIGKILL the group if it does not exit in time; return the exit code."""
        proc = self.proc
        code = 0
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            code = int(proc.returncode)
            try:  # workers or helpers left behind in the group
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return code

    def close(self) -> None:
        """Stop (if running) and delete the log."""
        self.stop()
        self.log.close()


@dataclass(frozen=True)
class Response:
    """What :meth:`ServerProcess.get_fresh` read."""

    status: int
    worker: str
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


# Called with (method, path, status, headers, body) for every answer a ServerProcess gets (tests check
# each against the OpenAPI document).
ResponseCheck = Callable[[str, str, int, Mapping[str, str], bytes], None]


def server_env(database_url: str, lml_url: str | None, **extra: str) -> dict[str, str]:
    """A server's environment: the database, LML, no live-DJ probe, no Sentry, plus ``extra``."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS": "0",
        "MIGRATE_ON_START": "false",
        "LOG_LEVEL": "INFO",
        **extra,
    }
    if lml_url is not None:
        env["LIBRARY_METADATA_URL"] = lml_url
    env.pop("SENTRY_DSN", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # every host makes (and removes) its own
    return env


class ServerProcess(Process):
    """One host: ``sanic server:app --workers N`` (0: ``--single-process``) on a free port.

    Args:
        env: the full environment (see :func:`server_env`).
        workers: worker processes; 0 runs ``--single-process``.
        inspector_port: enable Sanic's inspector on this port (for ``sanic inspect reload``).
        name: a label for logs and errors.
        target: the ``module:app`` to serve.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        workers: int = 2,
        *,
        inspector_port: int | None = None,
        name: str = "server",
        target: str = "server:app",
    ) -> None:
        super().__init__(name)
        self.target = target
        self.port = free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.inspector_port = inspector_port
        if inspector_port is not None:
            self.env.update(
                SANIC_INSPECTOR="true", SANIC_INSPECTOR_HOST="127.0.0.1", SANIC_INSPECTOR_PORT=str(inspector_port)
            )
        self.headers: dict[str, str] = {}
        self.check: ResponseCheck | None = None
        self._http: httpx.Client | None = None

    def start(self) -> ServerProcess:
        mode = ["--single-process"] if self.workers == 0 else ["--workers", str(self.workers)]
        cmd = [sys.executable, "-m", "sanic", self.target, "--host", "127.0.0.1", "--port", str(self.port), *mode]
        self.spawn(cmd, self.env)
        return self

    def wait_serving(self, timeout: float = 90.0) -> None:
        """Every worker serves and Sanic's main process has seen every worker's ack."""
        self.wait_for_log(r"worker serving worker=", max(self.workers, 1), timeout)
        if self.workers:
            self.wait_for_log(r"Worker ready \[\d+\]", self.workers, timeout)

    def worker_pids(self) -> dict[str, int]:
        """Worker name -> pid from the 'worker serving' lines (latest wins)."""
        pids: dict[str, int] = {}
        for line in self.log.read():
            m = re.search(r"worker serving worker=(\S+) pid=(\d+)", line)
            if m:
                pids[m.group(1)] = int(m.group(2))
        return pids

    @property
    def http(self) -> httpx.Client:
        """A kept-alive client (building one per request costs tens of milliseconds)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=30.0, headers=self.headers)
        return self._http

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """GET on the kept-alive client; a connection to a worker that died is retried once."""
        try:
            response = self.http.get(path, headers=headers)
        except httpx.TransportError:
            response = self.http.get(path, headers=headers)
        if self.check is not None:
            self.check("GET", path, response.status_code, response.headers, response.content)
        return response

    def ready(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/health/ready").json()
        return body

    def get_fresh(self, path: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> Response:
        """One GET on a new connection (the kernel spreads new connections over the workers)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={**self.headers, **(headers or {})})
            answer = conn.getresponse()
            response = Response(
                answer.status,
                answer.getheader("X-Worker") or "",
                {k.lower(): v for k, v in answer.getheaders()},
                answer.read(),
            )
        finally:
            conn.close()
        if self.check is not None:
            self.check("GET", path, response.status, response.headers, response.content)
        return response

    def per_worker(self, path: str, attempts: int = 200) -> dict[str, Response]:
        """``path`` from every live worker (fresh connections until each has answered)."""
        seen: dict[str, Response] = {}
        for _ in range(attempts):
            response = self.get_fresh(path)
            seen.setdefault(response.worker, response)
            if len(seen) >= max(self.workers, 1):
                break
        return seen

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        super().close()


class FakeProcess(Process):
    """The LML fake as its own process (``python -m devtools.lml_fake``), driven through ``/_admin``."""

    def __init__(self, args: list[str], latency_ms: float, jitter_ms: float = 0.0) -> None:
        super().__init__("lml-fake")
        self.args = args
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.url = ""
        self._http: httpx.Client | None = None

    def start(self, module: str = "devtools.lml_fake", timeout: float = 60.0) -> FakeProcess:
        cmd = [sys.executable, "-m", module, *self.args, "--port=0",
               f"--latency-ms={self.latency_ms}", f"--jitter-ms={self.jitter_ms}"]  # fmt: skip
        self.spawn(cmd, {**os.environ, "PYTHONUNBUFFERED": "1"})
        line = self.wait_for_log(r"lml-fake listening on ", timeout=timeout)[0]
        self.url = line.split("listening on ", 1)[1].strip()
        self._http = httpx.Client(base_url=self.url, timeout=10.0)
        return self

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self._http is not None
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "/_admin/stats")

    def calls(self) -> tuple[int, int]:
        """(lookups, release fetches) since the last reset."""
        counts = self.stats()["counts"]
        return int(counts["lookup"]), int(counts["release"])

    def reset(self) -> None:
        self.admin("POST", "/_admin/reset")

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        self.admin("POST", "/_admin/latency", {"latency_ms": latency_ms, "jitter_ms": jitter_ms})
        self.latency_ms, self.jitter_ms = latency_ms, jitter_ms

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        super().close()
