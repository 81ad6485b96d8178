"""A server worker's way out: one stop, taken once, that no later signal can cut short.

Sanic registers ``app.stop`` with ``loop.add_signal_handler`` and removes it as soon as the loop
stops, which restores the default dispositions for the whole drain: the SIGINT the main process sends
each worker, arriving just after the SIGTERM systemd sent the whole group, then raised
KeyboardInterrupt mid-drain, and a second SIGTERM killed the worker outright. Here the first stop
signal marks the worker draining and stops the app once it serves; later stop signals reach the same
handler and do nothing (the main process escalates with SIGKILL if the drain overruns). The handler
stays installed: switching to ``SIG_IGN`` inside it let a second signal that arrived in between
surface as ``OSError: Signal 15 ignored due to race condition`` out of the event loop (CPython raises
that for a pending signal whose handler became ``SIG_IGN``), a traceback on a group SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import FrameType
from typing import Any

from sanic import Sanic

from backend.lifecycle import signals

logger = logging.getLogger(__name__)

PARENT_POLL_S = 1.0
STOP_RETRY_S = 0.05


def mark_draining(app: Sanic[Any, Any]) -> None:
    """Record that this worker is stopping (readiness answers 503 from now on)."""
    app.ctx.draining = True


def is_draining(app: Sanic[Any, Any]) -> bool:
    """Whether this worker is stopping."""
    return bool(getattr(app.ctx, "draining", False))


class WorkerStop:
    """Stop ``app`` once, on the first stop signal, and only after it has started serving.

    Args:
        app: the worker's app.
        loop: the worker's event loop.
    """

    def __init__(self, app: Sanic[Any, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._app = app
        self._loop = loop
        self.requested = False

    def install(self) -> None:
        """Handle SIGINT/SIGTERM from now on, and act on one that arrived while they were held."""
        for sig in signals.STOP_SIGNALS:
            signal.signal(sig, self.on_signal)
        early = signals.take_early_stop()
        if early is not None:
            self.on_signal(early, None)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            return
        self.requested = True
        mark_draining(self._app)
        self._loop.call_soon_threadsafe(self._stop_when_serving)

    def _stop_when_serving(self) -> None:
        # Stopping the loop while Sanic still runs a start listener to completion would fail that
        # run ("Event loop stopped before Future completed"); wait until the server loop runs.
        if not self._app.state.is_running:
            self._loop.call_later(STOP_RETRY_S, self._stop_when_serving)
            return
        self._app.stop(terminate=False)


async def watch_parent(worker: str, parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """Stop this worker, as a SIGTERM would, once its main process is gone.

    Args:
        worker: this worker's name, for the log line.
        parent_pid: the main process's pid.
        poll_s: how often to look.
    """
    try:
        while os.getppid() == parent_pid:
            await asyncio.sleep(poll_s)
    except asyncio.CancelledError:  # the worker stops: a clean end, not worth Sanic's "cancelled" warning
        return
    logger.warning("main process gone; stopping worker=%s pid=%d parent=%d", worker, os.getpid(), parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)
