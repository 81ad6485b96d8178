"""``sanic tests.e2e.lifecycle_app:app``: the real app plus test-only hooks, each off unless its variable is set.

- ``RP_TEST_IMPORT_DELAY_S``: the main process logs ``test-hook: importing`` and sleeps this long while the
  module imports (a wide "signal during import" window).
- ``RP_TEST_START_DELAY_S``: every worker sleeps this long in ``before_server_start`` (a wide startup window).
- ``RP_TEST_CRASH_FILE``: a file holding a count; a starting worker that reads a count above 0 writes it back
  decremented and dies before it serves: ``os._exit(3)``, or with ``RP_TEST_CRASH_MODE=raise`` an exception.
- ``RP_TEST_STOP_HANG_S``: every worker sleeps this long in ``before_server_stop`` (a drain that overruns).
- ``GET /_test/exit?code=N``: the worker that answers dies with ``os._exit(N)``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from pathlib import Path

from sanic import Request
from sanic.response import HTTPResponse

from backend.app import create_app
from backend.context import App

logger = logging.getLogger("backend.tests.lifecycle_app")

app = create_app()

if multiprocessing.parent_process() is None and os.environ.get("RP_TEST_IMPORT_DELAY_S"):
    logger.info("test-hook: importing pid=%d", os.getpid())
    time.sleep(float(os.environ["RP_TEST_IMPORT_DELAY_S"]))


@app.before_server_start
async def test_start_hooks(app: App) -> None:
    crash_file = os.environ.get("RP_TEST_CRASH_FILE")
    if crash_file:
        path = Path(crash_file)
        left = int(path.read_text() or "0") if path.exists() else 0
        if left > 0:
            path.write_text(str(left - 1))
            logger.info("test-hook: crashing on start worker=%s pid=%d left=%d", app.ctx.worker, os.getpid(), left - 1)
            if os.environ.get("RP_TEST_CRASH_MODE") == "raise":
                raise RuntimeError("test-hook: start failed")
            os._exit(3)
    delay = float(os.environ.get("RP_TEST_START_DELAY_S") or 0)
    if delay:
        logger.info("test-hook: slow start worker=%s pid=%d", app.ctx.worker, os.getpid())
        await asyncio.sleep(delay)


@app.before_server_stop
async def test_stop_hooks(app: App) -> None:
    hang = float(os.environ.get("RP_TEST_STOP_HANG_S") or 0)
    if hang:
        logger.info("test-hook: hanging in before_server_stop worker=%s pid=%d", app.ctx.worker, os.getpid())
        await asyncio.sleep(hang)


@app.get("/_test/exit")
async def test_exit(request: Request) -> HTTPResponse:
    os._exit(int(request.args.get("code", "3")))
