"""What every scenario gets: the database server, run sizes, and helpers that always stop their processes."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.catalogs import CatalogSpec
from bench.pg import Postgres
from bench.procs import FakeProcess, ServerProcess, server_env

logger = logging.getLogger("bench")


@dataclass
class BenchContext:
    """Shared settings of one benchmark invocation.

    Attributes:
        pg: the PostgreSQL server (scenarios create their own databases on it).
        quick: smoke run: fewer repetitions, shorter loads, smaller scales.
        runs: repetitions of each measured step (medians are reported).
        today: the date every catalog is built for (seed and fake agree even across midnight).
        tmp: scratch directory for load scripts.
    """

    pg: Postgres
    quick: bool
    runs: int
    today: datetime.date
    tmp: Path

    def spec(self, kind: str = "demo", rows: int = 310, killed_copies: int = 1) -> CatalogSpec:
        return CatalogSpec(kind, self.today, rows, killed_copies)

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    @contextmanager
    def fake(self, spec: CatalogSpec, latency_ms: float, jitter_ms: float = 0.0) -> Iterator[FakeProcess]:
        fake = FakeProcess(spec, latency_ms, jitter_ms)
        try:
            yield fake.start()
        finally:
            fake.stop()

    @contextmanager
    def server(
        self,
        database_url: str,
        fake: FakeProcess,
        workers: int = 2,
        inspector_port: int | None = None,
        **env: str,
    ) -> Iterator[ServerProcess]:
        """A started server whose workers all logged 'worker serving'; stopped on exit."""
        server = ServerProcess(server_env(database_url, fake.url, **env), workers, inspector_port)
        try:
            server.start()
            server.wait_serving()
            yield server
        finally:
            server.stop()
