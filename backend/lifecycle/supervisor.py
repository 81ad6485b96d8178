"""Sanic's WorkerManager, made to stop cleanly at any moment and to replace workers that die.

Sanic 25.12's ``WorkerManager`` (main process) has three lifecycle gaps this subclass closes:

- its signal handler does Manager IPC (``process.terminate()`` writes the shared worker state) on the
  main thread, possibly in the middle of another IPC call on the same connection, whose reply it then
  steals (``'NoneType' object has no attribute 'get'`` in ``_sync_states``). Here the handler only
  records the signal; the monitor loop acts on it within one 0.1 s poll;
- a stop before every worker acked made ``wait_for_ack`` re-send the stop message to itself forever;
- a worker that died stayed dead. Here it is restarted, at once the first time and then with a
  doubling back-off, but never once the host is stopping.

Waiting for workers to exit is bounded too: one that outlives the drain (``DRAIN_TIMEOUT_S``) plus
``STOP_SLACK_S`` is SIGKILLed.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from types import FrameType
from typing import Any

from sanic.exceptions import ServerKilled
from sanic.log import error_logger
from sanic.worker.constants import ProcessState, RestartOrder
from sanic.worker.manager import MonitorCycle, WorkerManager
from sanic.worker.process import Worker, WorkerProcess

from backend.lifecycle import signals
from backend.lifecycle.backoff import RestartBackoff

logger = logging.getLogger(__name__)

SERVER_PREFIX = f"{Worker.WORKER_PREFIX}-{WorkerProcess.SERVER_LABEL}-"
STOP_SLACK_S = 3.0
"""How much longer than the drain the main process waits for workers to exit before SIGKILLing them."""
POLL_S = 0.05


def is_server(name: str) -> bool:
    """Whether a Sanic process name is an HTTP server worker (``Sanic-Server-<n>-<m>``)."""
    return name.startswith(SERVER_PREFIX)


def describe_exit(exitcode: int | None) -> str:
    """``3``, ``signal SIGKILL`` or ``unknown`` for a process's exit code."""
    if exitcode is None:
        return "unknown"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return str(exitcode)


class SupervisedWorkerManager(WorkerManager):
    """A ``WorkerManager`` that stops cleanly at any moment and restarts dead server workers.

    Sanic builds it in ``Sanic.serve`` (``sanic.mixins.startup.WorkerManager`` is replaced by
    ``backend.lifecycle.sanic_patches.install``); the constructor is Sanic's, so what the app's
    settings decide is set on the class by :meth:`configure` before Sanic builds it.
    """

    stop_timeout_s = 5.0 + STOP_SLACK_S
    on_worker_death: Callable[[int], None] | None = None

    @classmethod
    def configure(cls, *, drain_s: float, on_worker_death: Callable[[int], None] | None) -> None:
        """Set the stop timeout from the drain, and what to do with a dead worker's pid (e.g. its metrics)."""
        cls.stop_timeout_s = drain_s + STOP_SLACK_S
        cls.on_worker_death = on_worker_death

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Set before Sanic's __init__, which installs shutdown_signal as the handler.
        self._stop_reason: str | None = None
        self._stop_started: float | None = None
        self._backoff = RestartBackoff()
        self._restart_due: dict[str, float] = {}
        self._seen_pid: dict[str, int] = {}
        self._restarts = 0
        super().__init__(*args, **kwargs)
        early = signals.take_early_stop()
        if early is not None and self._stop_reason is None:
            self._stop_reason = f"signal {_signal_name(early)}"

    # -- signals --------------------------------------------------------------------------------

    def shutdown_signal(self, signum: int, frame: FrameType | None) -> None:
        """Record the stop; a second one kills everything at once, as Sanic does."""
        if self._stop_reason is not None:
            logger.info("Shutdown interrupted. Killing.")
            with suppress(ServerKilled):
                self.kill()  # type: ignore[no-untyped-call]
            return
        self._stop_reason = f"signal {_signal_name(signum)}"

    # -- the run: start, monitor, join, terminate, cleanup (Sanic's run) ---------------------------

    def start(self) -> None:
        """Start every process, unless a stop came first."""
        for worker in self.workers:
            for process in worker.processes:
                if not worker.auto_start:
                    process.set_state(ProcessState.NONE, True)
                    continue
                if self._stop_reason is not None:
                    return
                with signals.blocked_stop_signals() if is_server(process.name) else nullcontext():
                    process.start()  # type: ignore[no-untyped-call]

    def wait_for_ack(self) -> None:
        """Wait for every server worker's ack; a stop ends the wait, dead workers are restarted."""
        deadline = time.monotonic() + self.THRESHOLD / 10
        deferred: list[Any] = []
        while self._stop_reason is None and not self._all_workers_ack():  # type: ignore[no-untyped-call]
            if self.monitor_subscriber.poll(0.1):
                message = self.monitor_subscriber.recv()
                if message == "__TERMINATE_EARLY__" and self._restarts:
                    # A replacement (for a worker that died before its ack was seen) failed to start:
                    # a crash like any other, restarted with back-off, not a failed boot.
                    logger.warning("a worker failed while starting; it is restarted once it has exited")
                    continue
                if message == "__TERMINATE_EARLY__":
                    error_logger.error(
                        "One of your worker processes terminated before startup was completed. "
                        "Please solve any errors experienced during startup."
                    )
                    self.kill()  # type: ignore[no-untyped-call]
                if not message or message == "__TERMINATE__":
                    self._stop_reason = "stop message"
                    break
                deferred.append(message)  # restarts and the like: handled once everyone acked
                continue
            self._replace_dead_workers()
            if time.monotonic() > deadline:
                error_logger.error(
                    "Not all workers acknowledged a successful startup within %.0fs. Shutting down.",
                    self.THRESHOLD / 10,
                )
                self.kill()  # type: ignore[no-untyped-call]
        for message in deferred:
            self.monitor_publisher.send(message)

    def monitor(self) -> None:
        """Sanic's monitor loop, plus restarts of dead workers; returns once a stop is under way."""
        self.wait_for_ack()
        while self._stop_reason is None:
            cycle = self._poll_monitor()
            if cycle is MonitorCycle.BREAK:
                self._stop_reason = self._stop_reason or "stop message"
                break
            if cycle is MonitorCycle.CONTINUE:
                continue
            self._sync_states()  # type: ignore[no-untyped-call]
            self._cleanup_non_tracked_workers()
            self._replace_dead_workers()
        self._begin_stop()

    def _begin_stop(self) -> None:
        logger.info("Received %s. Shutting down.", self._stop_reason)
        self._restart_due.clear()
        self._stop_started = time.monotonic()
        self.shutdown()  # type: ignore[no-untyped-call]

    def join(self) -> None:
        """Wait for every process to exit; SIGKILL those still running after the stop timeout."""
        deadline = (self._stop_started or time.monotonic()) + self.stop_timeout_s
        killed = False
        while alive := [p for p in self.processes if p.is_alive()]:
            if not killed and time.monotonic() >= deadline:
                for process in alive:
                    logger.warning(
                        "process did not stop within %.0fs; killing name=%s pid=%d",
                        self.stop_timeout_s,
                        process.name,
                        process.pid,
                    )
                    with suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
                killed = True
            time.sleep(POLL_S)

    # -- restarts -------------------------------------------------------------------------------

    def restart(
        self,
        process_names: list[str] | None = None,
        restart_order: RestartOrder = RestartOrder.SHUTDOWN_FIRST,
        **kwargs: Any,
    ) -> None:
        """Sanic's restart (Inspector reloads, ``app.m.restart``), refused while stopping."""
        if self._stop_reason is not None or self._shutting_down:
            logger.info("restart of %s skipped: shutting down", process_names or "all workers")
            return
        servers_only = process_names is None or all(is_server(name) for name in process_names)
        with signals.blocked_stop_signals() if servers_only else nullcontext():
            super().restart(process_names, restart_order, **kwargs)

    def scale(self, num_worker: int) -> None:
        """Sanic's scale, refused while stopping."""
        if self._stop_reason is not None or self._shutting_down:
            logger.info("scale to %d skipped: shutting down", num_worker)
            return
        with signals.blocked_stop_signals():
            super().scale(num_worker)

    def _handle_message(self, message: str) -> MonitorCycle | None:
        """Sanic's handling of restart/scale messages, except a restarted worker's startup failure.

        Sanic's ``worker_serve`` sends ``__TERMINATE_EARLY__`` when the app fails to start; before
        the first ack that stops the host (``wait_for_ack``), later Sanic read it as a process name
        and logged "Failed to restart processes". The worker exits and is restarted with back-off.
        """
        if message == "__TERMINATE_EARLY__":
            logger.warning("a worker failed while starting; it is restarted once it has exited")
            return None
        return super()._handle_message(message)

    def _replace_dead_workers(self) -> None:
        """Restart server workers that exited, each after its back-off delay."""
        if self._stop_reason is not None or self._shutting_down:
            return
        now = time.monotonic()
        for process in list(self.transient_processes):
            name = process.name
            if not is_server(name) or not process.pid:  # never started
                continue
            if process.is_alive():
                if self._seen_pid.get(name) != process.pid:
                    self._seen_pid[name] = process.pid
                    self._backoff.started(name, now)
                continue
            due = self._restart_due.get(name)
            if due is None:
                on_death = type(self).on_worker_death  # through the class: a plain function, not a method
                if on_death is not None:
                    on_death(process.pid)
                delay, deaths = self._backoff.died(name, now)
                exit_text = describe_exit(process.exitcode)
                if delay:
                    logger.warning(
                        "worker died name=%s pid=%d exit=%s; backing off %.1fs before restarting (death %d in a row)",
                        name,
                        process.pid,
                        exit_text,
                        delay,
                        deaths,
                    )
                else:
                    logger.warning("worker died name=%s pid=%d exit=%s; restarting", name, process.pid, exit_text)
                due = self._restart_due[name] = now + delay
            if now >= due:
                del self._restart_due[name]
                self._restart_dead(process)

    def _restart_dead(self, process: WorkerProcess) -> None:
        try:
            self.restart([process.name])
        except Exception:  # a failed spawn is retried after a back-off, like a crash
            delay, _ = self._backoff.died(process.name, time.monotonic())
            logger.exception("worker restart failed name=%s; retrying in %.1fs", process.name, delay)
            self._restart_due[process.name] = time.monotonic() + max(delay, self._backoff.base_s)
            return
        self._restarts += 1
        logger.info("worker restarted name=%s pid=%d", process.name, process.pid)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
