"""/metrics on a real 2-worker host: the host's totals, workers and walker added up (issue 13)."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from devtools.processes import WARM, ServerProcess
from tests.e2e.conftest import Host
from tests.helpers import active_ids

pytestmark = [pytest.mark.pg, pytest.mark.e2e]


def samples(text: str, name: str) -> dict[str, float]:
    """``labels -> value`` of every sample of metric ``name`` in a Prometheus text exposition."""
    found = {}
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            found[m.group(1) or ""] = float(m.group(2))
    return found


def total(text: str, name: str, label_filter: str = "") -> float:
    return sum(v for labels, v in samples(text, name).items() if label_filter in labels)


def scrape_until(host: ServerProcess, condition: Callable[[str], bool], timeout: float = 10.0) -> str:
    """Scrape until ``condition(text)`` holds (each process copies its counters every second)."""
    deadline = time.monotonic() + timeout
    while True:
        text = host.get("/metrics").text
        if condition(text):
            return text
        assert time.monotonic() < deadline, text[-3000:]
        time.sleep(0.2)


class TestHostMetrics:
    def test_a_scrape_adds_up_every_worker_and_the_walker(
        self, hosts: Host, fake: LmlFake, small_catalog: DemoCatalog
    ) -> None:
        """After a walk and a load, LML calls equal the fake's count and requests equal what was sent."""
        host = hosts(2)
        host.wait_for_log(WARM + r"done: worker=main ", timeout=120)
        for rid in active_ids(small_catalog):  # load on every worker: live lookups for transient rows
            for _worker, response in host.per_worker(f"/library/rotation/{rid}/tracks").items():
                assert response.status == 200
        # Exactly what this test sends to one route, on fresh connections spread over both workers.
        sent = 0
        path = f"/library/rotation/{active_ids(small_catalog)[0]}/tracks"
        route = "library/rotation/<rotation_id:str>/tracks"
        before = total(host.get("/metrics").text, "rotation_picker_http_requests_total", route)
        for _ in range(50):
            assert host.get_fresh(path).status == 200
            sent += 1
        lml = fake.stats()["counts"]
        expected_lml = lml["lookup"] + lml["release"]

        def settled(text: str) -> bool:
            requests = total(text, "rotation_picker_http_requests_total", route) - before
            calls = total(text, "rotation_picker_lml_calls_total")
            return requests == sent and calls == expected_lml

        text = scrape_until(host, settled)
        assert total(text, "rotation_picker_lml_calls_total", 'endpoint="lookup"') == lml["lookup"]
        assert total(text, "rotation_picker_walk_leader") == 1
        assert total(text, "rotation_picker_walk_passes_total") >= 1
        assert total(text, "rotation_picker_http_request_duration_seconds_count", route) >= sent
        assert total(text, "rotation_picker_resolutions_total") > 0
        assert 'rotation_picker_walk_pass{counter="rows"}' in text

    def test_the_endpoint_can_require_a_token(self, hosts: Host) -> None:
        """With METRICS_TOKEN set, a scrape without it is refused and one with it answers."""
        host = hosts(1, METRICS_TOKEN="s3cret")
        assert host.get("/metrics").status_code == 401
        assert host.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200

    @pytest.mark.parametrize("workers", [0, 2], ids=["single-process", "two-workers"])
    def test_a_stopped_host_leaves_no_metrics_folder(self, hosts: Host, workers: int) -> None:
        """The folder every process of a host writes to is gone after a clean stop, in both process layouts."""
        host = hosts(workers)
        assert host.get("/metrics").status_code == 200
        (folder,) = Path(tempfile.gettempdir()).glob(f"rotation-picker-metrics-{host.pid}-*")
        assert host.stop() == 0
        assert not folder.exists()
