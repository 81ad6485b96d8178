"""What every scenario gets: the database server, the auth issuer, run sizes, and processes that always stop."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.catalogs import CatalogSpec
from bench.hosts import bench_env, start_host, stop_host, track
from bench.pg import Postgres
from devtools.auth_issuer import AuthIssuer
from devtools.processes import FakeProcess, ServerProcess

logger = logging.getLogger("bench")

TOKEN_TTL_S = 6 * 3600  # longer than any full run


@dataclass
class BenchContext:
    """Shared settings of one benchmark invocation.

    Attributes:
        pg: the PostgreSQL server (scenarios create their own databases on it).
        issuer: the local auth service every host trusts (the picker routes need a DJ's token).
        quick: smoke run: fewer repetitions, shorter loads, smaller scales.
        runs: repetitions of each measured step (medians are reported).
        today: the date every catalog is built for (seed and fake agree even across midnight).
        tmp: scratch directory for load scripts.
    """

    pg: Postgres
    issuer: AuthIssuer
    quick: bool
    runs: int
    today: datetime.date
    tmp: Path
    _token: str = field(default="", repr=False)

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header of a DJ (``catalog:read``), minted once per invocation."""
        if not self._token:
            self._token = self.issuer.mint("dj", ttl_s=TOKEN_TTL_S)
        return {"Authorization": f"Bearer {self._token}"}

    def spec(self, kind: str = "demo", rows: int = 310, killed_copies: int = 1, stable: bool = False) -> CatalogSpec:
        return CatalogSpec(kind, self.today, rows, killed_copies, stable)

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    @contextmanager
    def fake(self, spec: CatalogSpec, latency_ms: float, jitter_ms: float = 0.0) -> Iterator[FakeProcess]:
        """``python -m bench.fake`` on ``spec``'s catalog; stopped (and its log deleted) on exit."""
        fake = FakeProcess(spec.cli_args(), latency_ms, jitter_ms)
        track(fake)
        try:
            yield fake.start(module="bench.fake")
        finally:
            fake.close()

    def host(
        self, database_url: str, fake: FakeProcess, workers: int = 2, *, inspector_port: int | None = None, **env: str
    ) -> ServerProcess:
        """A host started but not waited for (the caller waits on what it measures; close with ``stop_host``)."""
        env_ = bench_env(database_url, fake.url, self.issuer, **env)
        return start_host(env_, workers, inspector_port=inspector_port, headers=self.auth)

    @contextmanager
    def server(
        self,
        database_url: str,
        fake: FakeProcess,
        workers: int = 2,
        *,
        inspector_port: int | None = None,
        **env: str,
    ) -> Iterator[ServerProcess]:
        """A started host whose workers all serve; stopped (and its log deleted) on exit."""
        server = self.host(database_url, fake, workers, inspector_port=inspector_port, **env)
        try:
            server.wait_serving()
            yield server
        finally:
            stop_host(server)
