"""Clients that send garbage (issue 10): every malformed request is a 4xx, never an ERROR line or a traceback.

Raw bytes on a socket to a real ``sanic server:app --workers 1``
(one worker, so its log is in request order): HTTP clients refuse to send most
of these, which is exactly why a log-flood vector hides behind them.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.auth_issuer import AuthIssuer
from devtools.lml_fake import LmlFake
from devtools.processes import ServerProcess
from tests.conftest import create_station_database, drop_database
from tests.e2e.conftest import host_env, station_host

pytestmark = [pytest.mark.pg, pytest.mark.e2e]


def exchange(host: ServerProcess, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection and read until the server closes it (every case sends Connection: close)."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert m, answer[:200]
    return int(m.group(1))


def request(
    host: ServerProcess, target: bytes, *, method: bytes = b"GET", extra: bytes = b"", body: bytes = b""
) -> bytes:
    auth = host.headers["Authorization"].encode()
    head = b"%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nConnection: close\r\n%s" % (method, target, auth, extra)
    if body:
        head += b"Content-Length: %d\r\n" % len(body)
    return exchange(host, head + b"\r\n" + body)


def without_errors(host: ServerProcess, since: int) -> list[str]:
    """Log lines since ``since`` that are ERRORs or tracebacks."""
    return [line for line in host.log.read()[since:] if re.search(r"\bERROR\b|Traceback|CRITICAL", line)]


@pytest.fixture(scope="module")
async def empty_station(pg_server_url: str) -> AsyncIterator[str]:
    """An empty station database: these requests never reach a row."""
    url = await create_station_database(pg_server_url)
    try:
        yield url
    finally:
        await drop_database(pg_server_url, url)


@pytest.fixture(scope="module")
def host(empty_station: str, lml_fake_session: LmlFake, issuer: AuthIssuer) -> Iterator[ServerProcess]:
    """One host for the module, access log on."""
    env = host_env(empty_station, lml_fake_session.url, issuer, ACCESS_LOG="true")
    server = station_host(env, 1, issuer, name="malformed")
    server.start().wait_serving()
    try:
        yield server
    finally:
        server.close()


class TestMalformedRequests:
    @pytest.mark.parametrize(
        ("target", "status"),
        [
            (b"/library/rotation/\x01/tracks", 400),
            (b"/library/rotation/%01/tracks", 400),
            (b"/library/rotation/1\x7f/tracks", 400),
            (b"/library/rotation/%ff%fe/tracks", 400),
            (b"/library/rotation/99999999999999999999999/tracks", 400),
            (b"/library/rotation/-1/tracks", 400),
            (b"/health/\x00", 400),
        ],
    )
    def test_bad_paths_are_4xx_without_an_error_line(self, host: ServerProcess, target: bytes, status: int) -> None:
        since = host.mark()
        for _ in range(3):
            answer = request(host, target)
            assert status_of(answer) == status, answer[:300]
        self.assert_quiet(host, since)

    def test_a_get_with_a_body_is_answered_without_an_error_line(self, host: ServerProcess) -> None:
        since = host.mark()
        answer = request(host, b"/health/ready", body=b'{"garbage": true}' * 100)
        assert status_of(answer) in (200, 503)
        answer = request(host, b"/library/rotation/1/tracks", body=b"x" * 5000)
        assert status_of(answer) in (200, 404)
        # kept alive: the body must be read before the next request on the connection
        auth = host.headers["Authorization"].encode()
        kept = b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 5\r\n\r\nhello" % auth
        answer = exchange(host, kept + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.count(b"HTTP/1.1 200 OK") == 2, answer[:600]
        self.assert_quiet(host, since)

    @pytest.mark.parametrize(
        "raw",
        [
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\nConnection: close\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\nConnection: close\r\n\r\n",
            b"POST /library/rotation/1/tracks HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
            b"Connection: close\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
        ],
        ids=["request-line", "version", "content-length", "header-size", "body-size", "chunk"],
    )
    def test_broken_http_is_4xx_without_an_error_line(self, host: ServerProcess, raw: bytes) -> None:
        since = host.mark()
        answer = exchange(host, raw)
        if answer:  # a request line that is not HTTP may be dropped; an HTTP answer must be a 4xx
            assert 400 <= status_of(answer) < 500, answer[:300]
        self.assert_quiet(host, since)

    @staticmethod
    def assert_quiet(host: ServerProcess, since: int) -> None:
        """No ERROR since ``since``: the one worker logs in order, so once a later request's access line is
        in the log, anything the bad requests logged is too."""
        marker = f"after-{since}"
        assert host.get(f"/health?probe={marker}").status_code == 200
        host.wait_for_log(marker, since=since, timeout=10)
        assert without_errors(host, since) == []
