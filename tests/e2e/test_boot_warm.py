"""The boot warmer in a real ``sanic server:app`` process on real PostgreSQL and the LML fake."""

from __future__ import annotations

import time

import asyncpg
import pytest

from devtools import demo_catalog as dc
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from tests.e2e.harness import ServerProcess

pytestmark = [pytest.mark.pg, pytest.mark.e2e]

# Rows whose LML answer is transient (timeout/degraded): never cached, so an open re-asks LML.
TRANSIENT = (dc.LML_TIMEOUT, dc.LML_DEGRADED)


def server_env(database_url: str, fake: LmlFake, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "LIBRARY_METADATA_URL": fake.url,
        "LML_CLIENT_RATE_PER_MIN": "100000",
        **extra,
    }


def wait_warm_done(server: ServerProcess, timeout: float = 90.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        warm = server.ready()["warm"]
        if warm["status"] in ("done", "failed"):
            return warm  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise TimeoutError(server.text()[-3000:])


class TestBootWarm:
    async def test_after_the_walk_every_picker_open_is_served_without_lml(
        self, seeded: asyncpg.Connection, database_url: str, fake: LmlFake, catalog: DemoCatalog
    ) -> None:
        """Health answers while the walk runs; afterwards opening every active row costs no LML call."""
        fake.set_latency(15.0, 5.0)  # slow enough that the walk is still running when /health is asked
        server = ServerProcess(server_env(database_url, fake), workers=1).start()
        try:
            server.wait_serving()
            saw_running_and_healthy = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not saw_running_and_healthy:
                warm_status = server.ready()["warm"]["status"]
                liveness = server.get("/health")
                saw_running_and_healthy = warm_status == "running" and liveness.status_code == 200
            assert saw_running_and_healthy, "never saw /health 200 while the walk was running"

            warm = wait_warm_done(server)
            assert warm["status"] == "done"
            counters = warm["counters"]
            assert isinstance(counters, dict)
            assert counters["rows"] == len(catalog.active_rows()) == counters["scanned"]
            assert counters["errors"] == 0 and counters["releaseFetchErrors"] == 0
            assert counters["lmlErrors"] == sum(catalog.outcome_counts().get(o, 0) for o in TRANSIENT)
            server.wait_for_log(r"\[rotation-tracks-cache-warm\] done: worker=\S+ scanned=\d+")
            server.wait_for_log(r"\[rotation-tracks-cache-warm\] worker_warm: worker=\S+ walk=1 ")

            fake.reset()
            active_ids = [i + 1 for i, r in enumerate(catalog.rotation) if r.is_active(catalog.today)]
            for rid in active_ids:
                response = server.get(f"/library/rotation/{rid}/tracks")
                assert response.status_code == 200, (rid, response.text)
            transient_rows = sum(catalog.outcome_counts().get(o, 0) for o in TRANSIENT)
            stats = fake.stats()
            assert stats["counts"]["release"] == 0
            assert stats["counts"]["lookup"] == transient_rows
        finally:
            assert server.stop() == 0
        assert "Traceback" not in server.text()
