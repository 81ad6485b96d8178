"""Install the lifecycle fixes into Sanic 25.12 where it looks them up; called by the app factory.

Three module attributes are replaced (``tests/unit/test_sanic_patches.py`` fails when Sanic changes
under them):

- ``sanic.mixins.startup.WorkerManager``: ``Sanic.serve`` builds the main process's manager from it;
  :class:`~backend.lifecycle.supervisor.SupervisedWorkerManager` stops cleanly and restarts dead workers.
- ``sanic.mixins.startup.Manager``: ``Sanic.serve`` starts its worker-state Manager with it;
  :func:`~backend.lifecycle.managers.start_manager`'s server process survives a group SIGTERM.
- ``sanic.server.runners._setup_system_signals``: a worker's stop-signal setup;
  :class:`~backend.lifecycle.worker.WorkerStop` takes one stop that later signals cannot interrupt.

The processes that run Sanic's serving code (the ``sanic`` CLI's main process and each server worker)
also hold their stop signals from here on, so one that arrives while the app still imports or a worker
still boots is acted on later instead of killing the process mid-way.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import sys
from typing import Any

import sanic
from sanic.compat import OS_IS_WINDOWS
from sanic.mixins import startup
from sanic.server import runners

from backend.lifecycle import signals
from backend.lifecycle.managers import start_manager
from backend.lifecycle.supervisor import SERVER_PREFIX, SupervisedWorkerManager
from backend.lifecycle.worker import WorkerStop

logger = logging.getLogger(__name__)

SANIC_SERIES = "25.12"
"""The Sanic major.minor these patches were written and tested against."""

_sanic_setup_system_signals = runners._setup_system_signals


def install() -> None:
    """Replace Sanic's lifecycle pieces with this project's, and hold stop signals (idempotent)."""
    if not sanic.__version__.startswith(SANIC_SERIES + "."):
        logger.warning("lifecycle patches target sanic %s.x, running %s", SANIC_SERIES, sanic.__version__)
    startup.WorkerManager = SupervisedWorkerManager  # type: ignore[attr-defined]  # imported name
    startup.Manager = start_manager  # type: ignore[attr-defined]  # imported name
    runners._setup_system_signals = setup_system_signals
    if serves_in_this_process():
        signals.hold_stop_signals()


def serves_in_this_process() -> bool:
    """Whether this is a server worker or the ``sanic`` CLI's main process (not a test or a script)."""
    if os.environ.get("SANIC_WORKER_NAME", "").startswith(SERVER_PREFIX):
        return True
    if multiprocessing.parent_process() is not None:
        return False
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return "sanic.__main__" in sys.modules or getattr(main_spec, "name", None) == "sanic.__main__"


def setup_system_signals(
    app: sanic.Sanic[Any, Any], run_multiple: bool, register_sys_signals: bool, loop: asyncio.AbstractEventLoop
) -> None:
    """Sanic's ``_setup_system_signals``, with one stop that no later signal interrupts.

    Falls back to Sanic's own where this process does not hold its stop signals (test clients,
    scripts) or does not want signal handling.
    """
    if OS_IS_WINDOWS or not register_sys_signals or not signals.holding():
        _sanic_setup_system_signals(app, run_multiple, register_sys_signals, loop)
        return
    os.environ["SANIC_WORKER_PROCESS"] = "true"
    WorkerStop(app, loop).install()
