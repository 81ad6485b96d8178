"""Run the real service as a ``sanic server:app`` subprocess and talk to it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One ``sanic server:app`` process tree, its log, and helpers to wait on it.

    Args:
        env: extra environment (DATABASE_URL, LIBRARY_METADATA_URL, tuning).
        workers: worker count; 0 means ``--single-process``.
    """

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="rp-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "MIGRATE_ON_START": "false", **env}
        self.env.pop("SENTRY_DSN", None)
        self.proc: subprocess.Popen[bytes] | None = None
        # One client for the whole run: a new httpx client per request costs ~50 ms of SSL setup.
        self.http = httpx.Client(base_url=self.url, timeout=30.0)

    def start(self) -> ServerProcess:
        mode = ["--single-process"] if self.workers == 0 else ["--workers", str(self.workers)]
        cmd = [sys.executable, "-m", "sanic", "server:app", "--host", "127.0.0.1", "--port", str(self.port), *mode]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def text(self) -> str:
        return ANSI.sub("", Path(self._log.name).read_text(errors="replace"))

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        """Wait until ``pattern`` matched ``count`` log lines; return the matching lines."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            lines = [line for line in self.text().splitlines() if regex.search(line)]
            if len(lines) >= count:
                return lines
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited rc={self.proc.returncode}:\n{self.text()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} x{count} not seen in {timeout}s:\n{self.text()[-4000:]}")
            time.sleep(0.05)

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Wait until every worker has finished starting (safe to signal after this)."""
        self.wait_for_log(r"worker serving worker=", max(self.workers, 1), timeout)
        # Sanic's main process notices worker acks on a 0.1 s poll; a stop signal before it has seen
        # them all makes it spin in wait_for_ack forever (sanic-multiworker-notes.md, Q6).
        time.sleep(0.5)

    def get(self, path: str) -> httpx.Response:
        """GET on the kept-alive client; a connection to a worker that died is retried once."""
        try:
            return self.http.get(path)
        except httpx.TransportError:
            return self.http.get(path)

    def ready(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/health/ready").json()
        return body

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the main process; SIGKILL the group if it does not exit in time."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self.http.close()
        return int(self.proc.returncode)

    def worker_pids(self) -> dict[str, int]:
        """Worker name -> pid, from the 'worker serving' lines (latest wins)."""
        pids: dict[str, int] = {}
        for line in self.text().splitlines():
            m = re.search(r"worker serving worker=(\S+) pid=(\d+)", line)
            if m:
                pids[m.group(1)] = int(m.group(2))
        return pids
