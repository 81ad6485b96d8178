"""``multiprocessing`` Managers whose server process survives stop signals and dies with its owner.

A Manager's server process ignores SIGINT but not SIGTERM. Sent to the whole process group (systemd's
KillMode=control-group), SIGTERM killed it before its owner had finished using it, and the owner's
next proxy call raised BrokenPipeError. Here it ignores both; its owner shuts it down explicitly, and
it exits by itself if the owner dies without doing so.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.context import BaseContext
from multiprocessing.managers import SyncManager

OWNER_POLL_S = 1.0


def start_manager(ctx: BaseContext | None = None) -> SyncManager:
    """Start a SyncManager, as ``ctx.Manager()`` does, whose server process ignores stop signals.

    Args:
        ctx: the multiprocessing context; the current default when omitted.

    Returns:
        The started manager; call ``shutdown()`` on it when done.
    """
    manager = SyncManager(ctx=ctx if ctx is not None else multiprocessing.get_context())
    manager.start(initializer=_init_server_process, initargs=(os.getpid(),))
    return manager


def _init_server_process(owner_pid: int) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(owner_pid,), name="manager-owner-watch", daemon=True).start()


def _exit_when_orphaned(owner_pid: int) -> None:
    while os.getppid() == owner_pid:
        time.sleep(OWNER_POLL_S)
    os._exit(0)  # the owner is gone, and with it every proxy: nothing is left to serve or flush
