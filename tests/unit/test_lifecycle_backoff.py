"""RestartBackoff and the supervisor's small helpers: when a dead worker is restarted, and how it is named."""

from __future__ import annotations

import pytest

from backend.lifecycle.backoff import RestartBackoff
from backend.lifecycle.supervisor import describe_exit, is_server


class TestRestartBackoff:
    def test_first_death_restarts_at_once(self) -> None:
        """A worker that dies for the first time is restarted without delay."""
        backoff = RestartBackoff()
        backoff.started("w", 0.0)
        assert backoff.died("w", 100.0) == (0.0, 1)

    def test_deaths_in_a_row_wait_a_doubling_delay_up_to_the_cap(self) -> None:
        """Each further death soon after a start waits 1, 2, 4 ... seconds, never more than 30."""
        backoff = RestartBackoff()
        now = 0.0
        delays = []
        for _ in range(9):
            backoff.started("w", now)
            now += 0.5
            delay, _ = backoff.died("w", now)
            delays.append(delay)
            now += delay
        assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]

    def test_a_worker_that_stayed_up_starts_over(self) -> None:
        """Once a worker ran for reset_after_s, its next death counts as the first again."""
        backoff = RestartBackoff(reset_after_s=60.0)
        backoff.started("w", 0.0)
        backoff.died("w", 1.0)
        backoff.started("w", 1.0)
        assert backoff.died("w", 2.0) == (1.0, 2)
        backoff.started("w", 2.0)
        assert backoff.died("w", 62.0) == (0.0, 1)

    def test_workers_back_off_independently(self) -> None:
        """One worker's crashes do not delay another worker's restart."""
        backoff = RestartBackoff()
        for name in ("a", "b"):
            backoff.started(name, 0.0)
        backoff.died("a", 1.0)
        backoff.started("a", 1.0)
        assert backoff.died("a", 2.0)[0] == 1.0
        assert backoff.died("b", 2.0)[0] == 0.0

    def test_a_worker_never_seen_started_still_backs_off(self) -> None:
        """A worker that dies before it was ever seen alive keeps counting its deaths."""
        backoff = RestartBackoff()
        assert [backoff.died("w", float(t))[0] for t in range(3)] == [0.0, 1.0, 2.0]


class TestDescribeExit:
    @pytest.mark.parametrize(
        ("exitcode", "text"),
        [
            pytest.param(3, "3", id="exit-code"),
            pytest.param(0, "0", id="clean-exit"),
            pytest.param(-9, "signal SIGKILL", id="sigkill"),
            pytest.param(-11, "signal SIGSEGV", id="segfault"),
            pytest.param(-200, "signal 200", id="unknown-signal"),
            pytest.param(None, "unknown", id="still-running"),
        ],
    )
    def test_names_exit_codes_and_signals(self, exitcode: int | None, text: str) -> None:
        """Negative exit codes are the signal that killed the process, by name."""
        assert describe_exit(exitcode) == text


class TestIsServer:
    @pytest.mark.parametrize(
        ("name", "server"),
        [
            pytest.param("Sanic-Server-0-0", True, id="server"),
            pytest.param("Sanic-Server-12-0", True, id="server-12"),
            pytest.param("Sanic-Inspector-0", False, id="inspector"),
            pytest.param("Sanic-Main", False, id="main"),
        ],
    )
    def test_only_http_server_workers_are_servers(self, name: str, server: bool) -> None:
        """Only Sanic's HTTP server workers are supervised; the Inspector and managed processes are not."""
        assert is_server(name) is server
