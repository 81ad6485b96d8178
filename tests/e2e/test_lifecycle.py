"""Process lifecycle on real ``sanic ... --workers N`` process trees, real signals and real crashes.

Invariants: a SIGTERM or SIGINT to the main process or to the whole group, at any moment, ends the
service within 10 s with exit code 0, no ERROR line, no traceback and no process left behind; a worker
that dies is replaced (warm) within 5 s, with back-off when it keeps dying; workers whose main process
was SIGKILLed stop by themselves; a draining worker's readiness is 503.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from backend.lifecycle.managers import start_manager
from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from devtools.processes import ROOT, WARM, ServerProcess, free_port
from tests.e2e.conftest import assert_warm, host_env, station_host

pytestmark = [pytest.mark.pg, pytest.mark.e2e]

REAL_APP = "server:app"
TEST_APP = "tests.e2e.lifecycle_app:app"
STOP_BUDGET_S = 10.0
REPLACE_BUDGET_S = 5.0
SERVING = r"worker serving worker="


Start = Callable[..., AbstractContextManager[ServerProcess]]


@pytest.fixture
def running(station_url: str, fake: LmlFake, issuer: AuthIssuer) -> Start:
    """``with running(workers, target, **env) as server``: a server on the seeded station database, started
    (not waited for); its whole process group is SIGKILLed and its log deleted afterwards."""

    @contextmanager
    def start(
        workers: int = 2, target: str = REAL_APP, inspector_port: int | None = None, **env: str
    ) -> Iterator[ServerProcess]:
        base = host_env(station_url, fake.url, issuer, LML_CLIENT_RATE_PER_MIN="100000")
        options: dict[str, Any] = {"target": target, "inspector_port": inspector_port, "name": "life"}
        server = station_host({**base, **env}, workers, issuer, **options)
        try:
            yield server.start()
        finally:
            server.close()

    return start


def wait_all_serving(server: ServerProcess) -> None:
    server.wait_for_log(SERVING, server.workers, timeout=60)


def wait_walk_done(server: ServerProcess) -> None:
    """Wait until this host's main process finished its first walk pass."""
    server.wait_for_log(WARM + r"done: worker=main ", timeout=120)


def wait_walk_running(server: ServerProcess, scanned: int = 3) -> None:
    """Wait until the walk is under way (``scanned`` rows done) and not finished."""
    deadline = time.monotonic() + 60
    while True:
        walker = server.ready()["warm"]["walker"] or {}
        if walker.get("state") == "passing" and (walker.get("counters") or {}).get("scanned", 0) >= scanned:
            return
        assert not server.lines(WARM + r"done: worker=main "), "the walk finished before the signal"
        assert time.monotonic() < deadline, server.log.tail()
        time.sleep(0.02)


def assert_clean_output(server: ServerProcess) -> None:
    text = server.log.text()
    assert "Traceback" not in text, text[-6000:]
    assert not re.search(r"\bERROR\b", text), text[-6000:]


def assert_stops_cleanly(server: ServerProcess, send: Callable[[], None]) -> float:
    """Send the stop; the service exits 0 within the budget, logs no error and leaves no process."""
    started = time.monotonic()
    send()
    rc = server.wait_exit(STOP_BUDGET_S + 5)
    elapsed = time.monotonic() - started
    assert rc == 0, f"rc={rc} after {elapsed:.1f}s:\n{server.log.text()[-6000:]}"
    assert elapsed < STOP_BUDGET_S, f"stopped in {elapsed:.1f}s"
    deadline = time.monotonic() + 3
    while server.group_pids():
        assert time.monotonic() < deadline, f"left behind: {server.group_pids()}\n{server.log.text()[-3000:]}"
        time.sleep(0.05)
    assert_clean_output(server)
    return elapsed


def assert_stops_cleanly_but_for_the_start_failures(server: ServerProcess) -> None:
    """Like assert_stops_cleanly, allowing only the tracebacks of start listeners that raised on purpose."""
    server.signal(group=True, signum=signal.SIGTERM)
    assert server.wait_exit(STOP_BUDGET_S) == 0, server.log.text()[-6000:]
    text = server.log.text()
    failures = text.count("RuntimeError: test-hook: start failed")
    assert failures and text.count("Traceback") <= failures, text[-6000:]
    errors = [line for line in text.splitlines() if re.search(r"\bERROR\b", line)]
    assert all("test-hook: start failed" in line for line in errors), errors


def sender(server: ServerProcess, to: str, sig: signal.Signals) -> Callable[[], None]:
    if to == "group":
        return lambda: server.signal(group=True, signum=sig)
    return lambda: server.signal(sig)


# Every moment below gets a stop sent to the whole group (systemd, Ctrl-C); the main process alone is
# stopped right after boot, mid-walk, during import and while workers start (idle and right after a reload
# only by the group, the harder case: every process gets the signal at once). Each of the four pairings of
# target (main, group) and signal (SIGTERM, SIGINT) appears at least once.
GROUP_SIGTERM = pytest.param("group", signal.SIGTERM, id="group-SIGTERM")
GROUP_SIGINT = pytest.param("group", signal.SIGINT, id="group-SIGINT")
MAIN_SIGTERM = pytest.param("main", signal.SIGTERM, id="main-SIGTERM")
MAIN_SIGINT = pytest.param("main", signal.SIGINT, id="main-SIGINT")


class TestStopSignals:
    @pytest.mark.parametrize(("to", "sig"), [MAIN_SIGTERM, GROUP_SIGTERM])
    def test_stop_right_after_boot_is_clean(self, running: Start, fake: LmlFake, to: str, sig: signal.Signals) -> None:
        """A stop as soon as every worker serves (the walk may still run) exits 0, quietly."""
        with running(workers=2) as server:
            wait_all_serving(server)
            assert_stops_cleanly(server, sender(server, to, sig))

    @pytest.mark.parametrize(("to", "sig"), [GROUP_SIGTERM, MAIN_SIGINT])
    def test_stop_mid_walk_with_four_workers_is_clean(
        self, running: Start, fake: LmlFake, to: str, sig: signal.Signals
    ) -> None:
        """A stop while the main process walks (its Manager in use) exits 0, quietly (defect 1)."""
        fake.set_latency(2000.0, 0.0)  # a walk of tens of seconds: still running when the signal comes
        with running(workers=4) as server:
            wait_all_serving(server)
            wait_walk_running(server, scanned=1)
            assert_stops_cleanly(server, sender(server, to, sig))
            assert "host walk thread failed" not in server.log.text()

    @pytest.mark.parametrize(("to", "sig"), [GROUP_SIGINT])
    def test_stop_when_idle_is_clean(self, running: Start, fake: LmlFake, to: str, sig: signal.Signals) -> None:
        """A stop after the walk, with every worker warm, exits 0, quietly."""
        with running(workers=2) as server:
            wait_all_serving(server)
            wait_walk_done(server)
            assert_stops_cleanly(server, sender(server, to, sig))

    @pytest.mark.parametrize(
        ("to", "sig"),
        [
            pytest.param("main", signal.SIGTERM, id="main-SIGTERM"),
            pytest.param("group", signal.SIGINT, id="group-SIGINT"),
        ],
    )
    def test_stop_during_import_is_clean(self, running: Start, fake: LmlFake, to: str, sig: signal.Signals) -> None:
        """A stop while the main process still imports the app starts no worker and exits 0."""
        with running(target=TEST_APP, RP_TEST_IMPORT_DELAY_S="2") as server:
            server.wait_for_log(r"test-hook: importing")
            assert_stops_cleanly(server, sender(server, to, sig))
            assert SERVING not in server.log.text()

    @pytest.mark.parametrize(
        ("target", "started", "to", "sig"),
        [
            pytest.param(REAL_APP, r"Starting worker \[", "group", signal.SIGTERM, id="real-group-SIGTERM"),
            pytest.param(TEST_APP, r"test-hook: slow start", "main", signal.SIGTERM, id="slow-main-SIGTERM"),
            pytest.param(TEST_APP, r"test-hook: slow start", "group", signal.SIGINT, id="slow-group-SIGINT"),
        ],
    )
    def test_stop_while_workers_start_is_clean(
        self,
        running: Start,
        target: str,
        started: str,
        to: str,
        sig: signal.Signals,
    ) -> None:
        """A stop before every worker acked ends the main process instead of spinning (defect 2)."""
        with running(workers=4, target=target, RP_TEST_START_DELAY_S="2") as server:
            server.wait_for_log(started)
            assert_stops_cleanly(server, sender(server, to, sig))

    @pytest.mark.parametrize(
        ("to", "sig"),
        [
            pytest.param("group", signal.SIGTERM, id="group-SIGTERM"),
        ],
    )
    def test_stop_right_after_inspect_reload_is_clean(
        self, running: Start, fake: LmlFake, to: str, sig: signal.Signals
    ) -> None:
        """A stop while reloaded workers start exits 0, quietly (defect 4)."""
        with running(inspector_port=free_port()) as server:
            wait_all_serving(server)
            inspect = [sys.executable, "-m", "sanic", "inspect", "reload", "--host", "127.0.0.1", "--port"]
            reload = subprocess.run(
                [*inspect, str(server.inspector_port)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert reload.returncode == 0, reload.stdout + reload.stderr
            assert_stops_cleanly(server, sender(server, to, sig))


def fresh_get(server: ServerProcess, path: str, timeout: float = 30) -> tuple[int, str, Any]:
    """One request on a new connection (the kernel spreads connections over the workers)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("X-Worker") or "", json.loads(response.read())
    finally:
        conn.close()


def kill_worker(server: ServerProcess, how: str) -> tuple[str, int]:
    """Make one worker die ``how`` (SIGKILL, SIGSEGV or exit3); return its name and pid."""
    name, pid = sorted(server.worker_pids().items())[0]
    if how == "exit3":  # the worker that takes the request exits; the supervisor's log names it
        try:
            fresh_get(server, "/_test/exit?code=3", timeout=5)
        except (http.client.HTTPException, OSError):
            pass
        line = server.wait_for_log(r"worker died name=\S+ pid=\d+ exit=3", timeout=REPLACE_BUDGET_S)[0]
        found = re.search(r"name=(\S+) pid=(\d+)", line)
        assert found is not None
        return found.group(1), int(found.group(2))
    os.kill(pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGSEGV)
    return name, pid


class TestWorkerReplacement:
    @pytest.mark.parametrize(
        ("how", "exit_text"),
        [
            pytest.param("SIGKILL", "exit=signal SIGKILL", id="SIGKILL"),
            pytest.param("SIGSEGV", "exit=signal SIGSEGV", id="segfault"),
            pytest.param("exit3", "exit=3", id="os._exit(3)"),
        ],
    )
    def test_dead_worker_is_replaced_warm_within_five_seconds(
        self, running: Start, fake: LmlFake, small_catalog: DemoCatalog, how: str, exit_text: str
    ) -> None:
        """The death is logged with name, pid and exit; the replacement loads stored answers before serving
        and answers every row without LML."""
        with running(workers=2, target=TEST_APP) as server:
            wait_all_serving(server)
            wait_walk_done(server)
            killed_at = time.monotonic()
            name, pid = kill_worker(server, how)
            died = server.wait_for_log(rf"worker died name={name} pid={pid} ", timeout=REPLACE_BUDGET_S)
            assert exit_text in died[0]
            server.wait_for_log(rf"{SERVING}{name} pid=(?!{pid}\b)\d+", timeout=REPLACE_BUDGET_S)
            assert time.monotonic() - killed_at < REPLACE_BUDGET_S
            new_pid = server.worker_pids()[name]
            assert new_pid != pid
            assert re.search(rf"worker restarted name={name} pid={new_pid}\b", server.log.text())
            warm = [line for line in server.log.text().splitlines() if f"worker_warm: worker={name} " in line]
            assert len(warm) == 2 and "beforeServing=true" in warm[-1] and " rows=0 " not in warm[-1]
            assert_warm(server, small_catalog, fake)  # every worker, the replacement included, at 0 LML calls
            assert_stops_cleanly(server, lambda: server.signal(group=True, signum=signal.SIGTERM))

    def test_worker_that_keeps_dying_is_restarted_with_back_off(
        self, running: Start, fake: LmlFake, tmp_path: Path
    ) -> None:
        """Three crashes on start: restarts wait 1, 2 then 4 s, the main process idles meanwhile, then it serves."""
        crashes = tmp_path / "crashes"
        with running(workers=2, target=TEST_APP, RP_TEST_CRASH_FILE=str(crashes)) as server:
            wait_all_serving(server)
            wait_walk_done(server)
            main = psutil.Process(server.pid)
            cpu_before, wall_before = sum(main.cpu_times()[:2]), time.monotonic()
            crashes.write_text("3")
            name, pid = kill_worker(server, "SIGKILL")
            server.wait_for_log(rf"worker died name={name} pid={pid} exit=signal SIGKILL; restarting")
            backoffs = server.wait_for_log(rf"worker died name={name} pid=\d+ exit=3; backing off", 3, timeout=30)
            assert [re.search(r"backing off (\S+)s", line).group(1) for line in backoffs] == ["1.0", "2.0", "4.0"]  # type: ignore[union-attr]
            server.wait_for_log(rf"{SERVING}{name} pid=", 2, timeout=30)
            cpu = sum(main.cpu_times()[:2]) - cpu_before
            wall = time.monotonic() - wall_before
            assert wall > 7, "restarts did not wait"
            assert cpu < 0.25 * wall, f"main process used {cpu:.1f}s CPU in {wall:.1f}s"
            assert crashes.read_text() == "0"
            assert_stops_cleanly(server, lambda: server.signal(group=True, signum=signal.SIGTERM))

    def test_worker_whose_start_raises_is_restarted_with_back_off(
        self, running: Start, fake: LmlFake, tmp_path: Path
    ) -> None:
        """A replacement whose start listener raises is restarted like a crash, not fed to Sanic's restart parser."""
        crashes = tmp_path / "crashes"
        env = {"RP_TEST_CRASH_FILE": str(crashes), "RP_TEST_CRASH_MODE": "raise"}
        with running(workers=2, target=TEST_APP, **env) as server:
            wait_all_serving(server)
            wait_walk_done(server)
            crashes.write_text("2")
            name, pid = kill_worker(server, "SIGKILL")
            backoffs = server.wait_for_log(rf"worker died name={name} pid=\d+ exit=\d+; backing off", 2, timeout=30)
            assert [re.search(r"backing off (\S+)s", line).group(1) for line in backoffs] == ["1.0", "2.0"]  # type: ignore[union-attr]
            server.wait_for_log(rf"{SERVING}{name} pid=", 2, timeout=30)
            text = server.log.text()
            assert "Failed to restart processes" not in text
            assert text.count("a worker failed while starting") == 2
            assert_stops_cleanly_but_for_the_start_failures(server)

    def test_stop_during_back_off_restarts_nothing(self, running: Start, fake: LmlFake, tmp_path: Path) -> None:
        """A SIGTERM while a restart waits out its back-off stops the host; no worker starts after it."""
        crashes = tmp_path / "crashes"
        with running(workers=2, target=TEST_APP, RP_TEST_CRASH_FILE=str(crashes)) as server:
            wait_all_serving(server)
            wait_walk_done(server)
            crashes.write_text("10")
            kill_worker(server, "SIGKILL")
            server.wait_for_log(r"backing off 2\.0s", timeout=30)
            assert_stops_cleanly(server, lambda: server.signal(signal.SIGTERM))
            after_stop = server.log.text().split("Received signal SIGTERM", 1)[1]
            assert "worker restarted" not in after_stop and "test-hook: crashing" not in after_stop


class TestStuckDrain:
    def test_a_worker_stuck_in_its_drain_is_killed_within_the_budget(self, running: Start, fake: LmlFake) -> None:
        """A worker whose stop listener hangs is SIGKILLed by the main process, which still exits 0 in time."""
        with running(workers=2, target=TEST_APP, RP_TEST_STOP_HANG_S="60") as server:
            wait_all_serving(server)
            elapsed = assert_stops_cleanly(server, lambda: server.signal(group=True, signum=signal.SIGTERM))
            assert elapsed > 7, "the main process did not wait for the drain"
            killed = re.findall(r"process did not stop within 8s; killing name=Sanic-Server-\d-0 ", server.log.text())
            assert len(killed) == 2


class TestOrphans:
    def test_workers_stop_by_themselves_when_the_main_process_is_sigkilled(self, running: Start, fake: LmlFake) -> None:
        """Workers notice their parent is gone and stop cleanly; Sanic's Manager process goes too; the next host
        to start removes what the dead one left in the temp directory."""
        fake.set_latency(1000.0, 0.0)
        with running(workers=2) as server:
            wait_all_serving(server)
            wait_walk_running(server, scanned=1)  # the walker thread is mid-walk when its process dies
            workers = server.worker_pids()
            assert len(server.group_pids()) > len(workers) + 1
            server.signal(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while server.group_pids():
                assert time.monotonic() < deadline, f"orphans: {server.group_pids()}\n{server.log.text()[-3000:]}"
                time.sleep(0.05)
            for name, pid in workers.items():
                assert re.search(rf"main process gone; stopping worker={name} pid={pid}\b", server.log.text())
            assert "Traceback" not in server.log.text(), server.log.text()[-6000:]
        # What the dead host left in the temp directory (its metrics folder) goes when the next host starts.
        (left,) = Path(tempfile.gettempdir()).glob(f"rotation-picker-metrics-{server.pid}-*")
        with running(workers=1) as successor:
            wait_all_serving(successor)
            assert not left.exists()
            assert successor.lines(rf"removed stale metrics folder path={re.escape(str(left))}")


class TestDraining:
    def test_readiness_is_503_while_the_worker_drains(self, running: Start, fake: LmlFake) -> None:
        """A readiness request still in flight when the stop arrives answers 503 ``unhealthy``."""
        with running(workers=1) as server:
            wait_all_serving(server)
            fake.reset()
            fake.add_fault("/health", "timeout", count=1)  # the LML ping hangs until its 2 s timeout
            answers: list[tuple[int, str, Any]] = []
            request = threading.Thread(target=lambda: answers.append(fresh_get(server, "/health/ready")))
            request.start()
            deadline = time.monotonic() + 10
            while fake.stats()["counts"]["health"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert_stops_cleanly(server, lambda: server.signal(signal.SIGTERM))
            request.join(5)
            status, _, body = answers[0]
            assert (status, body["status"]) == (503, "unhealthy")


class TestManagerProcess:
    def test_manager_server_ignores_stop_signals_until_its_owner_shuts_it_down(self) -> None:
        """SIGTERM and SIGINT leave the Manager serving (defect 1); shutdown() still ends it."""
        before = {child.pid for child in psutil.Process().children()}
        manager = start_manager()
        try:
            (server_pid,) = {child.pid for child in psutil.Process().children()} - before - _resource_trackers()
            shared = manager.dict()
            os.kill(server_pid, signal.SIGTERM)
            os.kill(server_pid, signal.SIGINT)
            shared["after"] = "signals"
            assert dict(shared) == {"after": "signals"}
        finally:
            manager.shutdown()
        assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE


def _resource_trackers() -> set[int]:
    return {c.pid for c in psutil.Process().children() if "resource_tracker" in " ".join(c.cmdline())}
