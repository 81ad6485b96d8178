"""End-to-end fixtures: an LML fake per test (servers run as subprocesses, so no shared state)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake


@pytest.fixture
def fake(catalog: DemoCatalog) -> Iterator[LmlFake]:
    """A fresh LML fake at 5 ms (tests that need a slower LML call set_latency)."""
    fake = LmlFake(catalog, latency_ms=5.0, jitter_ms=2.0).start()
    try:
        yield fake
    finally:
        fake.stop()
