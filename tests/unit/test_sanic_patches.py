"""The Sanic internals ``backend.lifecycle`` replaces or leans on: each test fails when Sanic changes under it.

If one fails after a Sanic upgrade, re-read the named Sanic function, check whether the lifecycle defect
it works around still exists (sanic-multiworker-notes.md, Q6/Q7), and update or drop the patch.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
from collections.abc import Callable
from typing import Any

import pytest
import sanic
import uvloop
from sanic import Sanic
from sanic.mixins import startup
from sanic.mixins.startup import StartupMixin
from sanic.server import runners
from sanic.worker.manager import MonitorCycle, WorkerManager
from sanic.worker.multiplexer import WorkerMultiplexer
from sanic.worker.process import Worker, WorkerProcess
from sanic.worker.serve import worker_serve

from backend.lifecycle import sanic_patches, signals
from backend.lifecycle.managers import start_manager
from backend.lifecycle.supervisor import SERVER_PREFIX, SupervisedWorkerManager
from backend.lifecycle.worker import is_draining, mark_draining


def source(fn: Callable[..., Any]) -> str:
    return inspect.getsource(fn)


def params(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


class TestSanicVersion:
    def test_sanic_is_the_series_the_patches_were_written_for(self) -> None:
        """The patches were read against and tested on this Sanic major.minor."""
        assert sanic.__version__.startswith(sanic_patches.SANIC_SERIES + ".")


class TestServeLookups:
    def test_serve_looks_up_worker_manager_and_manager_as_module_globals(self) -> None:
        """Sanic.serve finds both names in sanic.mixins.startup at call time, where install() replaces them."""
        names = StartupMixin.serve.__func__.__code__.co_names  # type: ignore[attr-defined]
        assert "WorkerManager" in names and "Manager" in names
        assert "sync_manager = Manager()" in source(StartupMixin.serve)
        assert hasattr(startup, "WorkerManager") and hasattr(startup, "Manager")

    def test_serve_shuts_its_manager_down_after_the_workers(self) -> None:
        """The worker-state Manager is shut down by its owner, so its process may ignore stop signals."""
        text = source(StartupMixin.serve)
        assert text.index("manager.run()") < text.index("sync_manager.shutdown()")

    def test_worker_manager_constructor_is_the_one_the_subclass_forwards(self) -> None:
        """SupervisedWorkerManager passes Sanic's constructor arguments through unchanged."""
        assert params(WorkerManager.__init__) == [
            "self",
            "number",
            "serve",
            "server_settings",
            "context",
            "monitor_pubsub",
            "worker_state",
        ]
        init = source(WorkerManager.__init__)
        assert "signal_func(SIGINT, self.shutdown_signal)" in init
        assert "signal_func(SIGTERM, self.shutdown_signal)" in init
        assert "self._shutting_down = False" in init
        assert "self.monitor_publisher, self.monitor_subscriber = monitor_pubsub" in init


class TestWorkerManagerInternals:
    def test_run_is_start_monitor_join_terminate_cleanup(self) -> None:
        """The subclass overrides the steps of run(), not run() itself."""
        assert WorkerManager.run.__code__.co_names == ("start", "monitor", "join", "terminate", "cleanup")

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("shutdown_signal", ["self", "signal", "frame"], id="shutdown_signal"),
            pytest.param("wait_for_ack", ["self"], id="wait_for_ack"),
            pytest.param("monitor", ["self"], id="monitor"),
            pytest.param("start", ["self"], id="start"),
            pytest.param("join", ["self"], id="join"),
            pytest.param("restart", ["self", "process_names", "restart_order", "kwargs"], id="restart"),
            pytest.param("scale", ["self", "num_worker"], id="scale"),
            pytest.param("kill", ["self"], id="kill"),
            pytest.param("shutdown", ["self"], id="shutdown"),
            pytest.param("_poll_monitor", ["self"], id="_poll_monitor"),
            pytest.param("_sync_states", ["self"], id="_sync_states"),
            pytest.param("_cleanup_non_tracked_workers", ["self"], id="_cleanup_non_tracked_workers"),
            pytest.param("_all_workers_ack", ["self"], id="_all_workers_ack"),
            pytest.param("_handle_message", ["self", "message"], id="_handle_message"),
        ],
    )
    def test_overridden_and_called_methods_keep_their_signatures(self, name: str, expected: list[str]) -> None:
        """Overridden and called WorkerManager methods still take the same parameters."""
        assert params(getattr(WorkerManager, name)) == expected

    def test_the_defects_the_subclass_works_around_are_still_there(self) -> None:
        """Sanic's handler still does IPC and sends the stop message; wait_for_ack still re-sends it."""
        assert "self.monitor_publisher.send(None)" in source(WorkerManager.shutdown_signal)
        assert "self.shutdown()" in source(WorkerManager.shutdown_signal)
        wait = source(WorkerManager.wait_for_ack)
        assert "self.monitor_publisher.send(monitor_msg)" in wait and '"__TERMINATE_EARLY__"' in wait
        assert "process.join()" in source(WorkerManager.join)

    def test_monitor_messages_keep_their_meaning(self) -> None:
        """A falsy message or __TERMINATE__ ends the monitor loop; other strings go to _handle_message."""
        poll = source(WorkerManager._poll_monitor)
        assert "if not message:" in poll and '"__TERMINATE__"' in poll
        assert "return self._handle_message(message)" in poll
        assert {MonitorCycle.BREAK, MonitorCycle.CONTINUE} == set(MonitorCycle)

    def test_a_worker_that_fails_to_start_reports_terminate_early(self) -> None:
        """worker_serve sends __TERMINATE_EARLY__ when the app fails to start; _handle_message would parse it."""
        assert "multiplexer.terminate(True)" in source(worker_serve)
        assert '"__TERMINATE_EARLY__" if early else "__TERMINATE__"' in source(WorkerMultiplexer.terminate)
        assert "self.restart(" in source(WorkerManager._handle_message)

    def test_shutdown_terminates_alive_processes_and_marks_the_manager(self) -> None:
        """shutdown() terminates every live process, then sets _shutting_down."""
        text = source(WorkerManager.shutdown)
        assert "process.terminate()" in text and "self._shutting_down = True" in text


class TestWorkerProcessInternals:
    def test_server_worker_names(self) -> None:
        """Server workers are named Sanic-Server-<n>-<m>, and the name reaches the child's environment."""
        assert SERVER_PREFIX == f"{Worker.WORKER_PREFIX}-{WorkerProcess.SERVER_LABEL}-" == "Sanic-Server-"
        assert 'os.environ["SANIC_WORKER_NAME"] = self.name' in source(WorkerProcess.start)

    def test_start_and_restart_start_the_child_in_the_calling_thread(self) -> None:
        """Both spawn from the caller, so a signal mask set around them is inherited by the child."""
        assert "self._current_process.start()" in source(WorkerProcess.start)
        assert "self.start()" in source(WorkerProcess.restart)

    def test_stop_and_restart_signals_are_sigint_and_sigterm(self) -> None:
        """terminate() sends SIGINT; a SHUTDOWN_FIRST restart terminate()s (SIGTERM) the old process."""
        assert "os.kill(self.pid, SIGINT)" in source(WorkerProcess.terminate)
        assert "self._current_process.terminate()" in source(WorkerProcess._terminate_now)

    def test_properties_the_supervisor_reads(self) -> None:
        """pid, exitcode and is_alive exist on WorkerProcess."""
        assert isinstance(WorkerProcess.pid, property) and isinstance(WorkerProcess.exitcode, property)
        assert params(WorkerProcess.is_alive) == ["self"]


class TestWorkerSignalInternals:
    def test_serve_http_1_sets_up_signals_after_the_ack_and_before_serving(self) -> None:
        """_setup_system_signals is a module global called after the ack, before set_serving and run_forever."""
        assert "_setup_system_signals" in runners._serve_http_1.__code__.co_names
        text = source(runners._serve_http_1)
        order = ["app.ack()", "_setup_system_signals(", "app.set_serving(True)", "_run_server_forever("]
        positions = [text.index(marker) for marker in order]
        assert positions == sorted(positions)

    def test_setup_system_signals_is_what_the_replacement_reimplements(self) -> None:
        """Same parameters; it sets SANIC_WORKER_PROCESS and registers app.stop as a loop signal handler."""
        assert params(runners._setup_system_signals) == ["app", "run_multiple", "register_sys_signals", "loop"]
        text = source(sanic_patches._sanic_setup_system_signals)
        assert 'os.environ["SANIC_WORKER_PROCESS"] = "true"' in text
        assert "loop.add_signal_handler(" in text and "partial(app.stop, terminate=False)" in text

    def test_run_server_forever_still_removes_loop_signal_handlers(self) -> None:
        """Why the replacement uses plain signal handlers: loop handlers are removed before the drain."""
        text = source(runners._run_server_forever)
        assert text.index("loop.remove_signal_handler(_signal)") < text.index("_run_shutdown_coro(loop, before_stop)")

    @pytest.mark.parametrize(
        "new_loop",
        [pytest.param(uvloop.new_event_loop, id="uvloop"), pytest.param(asyncio.new_event_loop, id="asyncio")],
    )
    def test_removing_a_handler_the_loop_never_had_keeps_the_disposition(
        self, new_loop: Callable[[], asyncio.AbstractEventLoop]
    ) -> None:
        """Sanic's removal (and loop.close) leave a plain handler's SIG_IGN in place during the drain."""
        loop = new_loop()
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            assert loop.remove_signal_handler(signal.SIGTERM) is False
            loop.close()
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        finally:
            signal.signal(signal.SIGTERM, previous)

    def test_set_serving_is_what_marks_the_app_running(self) -> None:
        """WorkerStop waits for state.is_running, which set_serving(True) sets."""
        assert "self.state.is_running = serving" in source(Sanic.set_serving)
        assert "terminate" in params(Sanic.stop)


class TestInstall:
    def test_install_replaces_the_three_lookups_and_is_idempotent(self) -> None:
        """After install() (twice), Sanic builds this project's manager, Manager and worker signal setup."""
        sanic_patches.install()
        sanic_patches.install()
        assert startup.WorkerManager is SupervisedWorkerManager  # type: ignore[attr-defined]
        assert startup.Manager is start_manager  # type: ignore[attr-defined]
        assert runners._setup_system_signals is sanic_patches.setup_system_signals
        assert sanic_patches._sanic_setup_system_signals is not sanic_patches.setup_system_signals
        assert issubclass(SupervisedWorkerManager, WorkerManager)

    def test_install_leaves_a_test_process_signals_alone(self) -> None:
        """Only the sanic CLI and its server workers hold stop signals; pytest keeps its Ctrl-C."""
        sanic_patches.install()
        assert not sanic_patches.serves_in_this_process()
        assert not signals.holding()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class TestDraining:
    def test_draining_is_per_app_and_off_until_marked(self) -> None:
        """A fresh app is not draining; marking one does not mark another."""
        first, second = Sanic("lifecycle_draining_a"), Sanic("lifecycle_draining_b")
        try:
            assert not is_draining(first)
            mark_draining(first)
            assert is_draining(first) and not is_draining(second)
        finally:
            Sanic.unregister_app(first)
            Sanic.unregister_app(second)
