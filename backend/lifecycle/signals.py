"""SIGINT/SIGTERM before Sanic handles them: remember them instead of dying with a traceback.

A process whose stop signals are *held* (the ``sanic`` CLI's main process, and each server worker)
records the first one and carries on; whoever takes over signal handling later (the supervising
worker manager, a worker's stop path) takes the record and acts on it. Server workers are started
with the signals blocked, so one sent while the worker still boots stays pending until it holds them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class _Held:
    installed = False
    first: int | None = None


def _remember(signum: int, frame: FrameType | None) -> None:
    if _Held.first is None:
        _Held.first = signum


def hold_stop_signals() -> bool:
    """Remember stop signals from now on and let through any that were blocked (idempotent).

    Returns:
        Whether this process holds its stop signals (False off the main thread, where Python
        cannot set handlers).
    """
    if _Held.installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in STOP_SIGNALS:
        signal.signal(sig, _remember)
    _Held.installed = True
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return True


def holding() -> bool:
    """Whether :func:`hold_stop_signals` took over this process's stop signals."""
    return _Held.installed


def take_early_stop() -> int | None:
    """The stop signal that arrived while held, if any; it is reported once."""
    first, _Held.first = _Held.first, None
    return first


@contextmanager
def blocked_stop_signals() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread; a process started meanwhile inherits the block.

    A blocked signal is not lost: it stays pending until the thread (or the child, once it holds
    its stop signals) unblocks it.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
