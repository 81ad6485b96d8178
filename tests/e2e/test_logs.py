"""Logs on a real 2-worker host (issue 13): one JSON format for every line, request ids, the access log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.processes import WARM
from tests.e2e.conftest import Host

pytestmark = [pytest.mark.pg, pytest.mark.e2e]


def records(lines: list[str]) -> list[dict[str, Any]]:
    """Every line parsed as a JSON object (fails on the first line that is not one)."""
    parsed = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


class TestJsonLogs:
    def test_every_line_is_json_and_a_requests_lines_carry_its_id(self, hosts: Host) -> None:
        """Sanic's lines and ours, in the main process and the workers, boot to stop, are JSON objects; the
        access line and the refusal line of one request carry the id the caller sent."""
        host = hosts(2, LOG_FORMAT="json", ACCESS_LOG="true")
        host.wait_for_log(WARM + r"done: worker=main ", timeout=120)
        rid = "log-test-0001"
        refused = host.get_fresh("/library/rotation/1/tracks", headers={"Authorization": "", "X-Request-Id": rid})
        assert refused.status == 401
        host.wait_for_log(rid, count=2)
        assert host.stop() == 0
        everything = records(host.log.read())
        assert {r.get("processName") for r in everything} >= {"MainProcess", "Sanic-Server-0-0", "Sanic-Server-1-0"}
        assert any(r["name"] == "sanic.root" for r in everything)  # Sanic's own lines, not only ours
        mine = [r for r in everything if r.get("request_id") == rid]
        assert {r["name"] for r in mine} == {"backend.routes.errors", "sanic.access"}, mine
        access = next(r for r in mine if r["name"] == "sanic.access")
        assert "401" in json.dumps(access)

    def test_text_lines_carry_the_request_id_too(self, hosts: Host) -> None:
        """The default text format appends ``request_id=`` to a request's lines, the access line included."""
        host = hosts(1, ACCESS_LOG="true")
        rid = "log-test-0002"
        assert host.get_fresh("/library/rotation/abc/tracks", headers={"X-Request-Id": rid}).status == 400
        lines = host.wait_for_log(rf"request_id={rid}\b", count=2)
        assert any("request failed" in line and "status=400" in line for line in lines), lines
