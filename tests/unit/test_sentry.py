"""Sentry: off without a DSN; with tracing on, every LML call is a span of the request's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from backend.clients.factory import build_lml_client
from backend.config import AppConfig, Secret
from backend.sentry import init_sentry


class CapturingTransport(Transport):
    """A real sentry-sdk transport that keeps the envelopes instead of sending them."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
def transport() -> Iterator[CapturingTransport]:
    captured = CapturingTransport()
    yield captured
    sentry_sdk.get_global_scope().set_client(None)


class TestInit:
    def test_nothing_is_initialised_without_a_dsn(self) -> None:
        """No SENTRY_DSN: the SDK stays off."""
        assert init_sentry(AppConfig()) is False

    def test_the_configured_sample_rate_reaches_the_client(self, transport: CapturingTransport) -> None:
        """SENTRY_TRACES_SAMPLE_RATE is passed to the SDK (tracing is off by default)."""
        config = AppConfig(sentry_dsn=Secret("https://key@sentry.example/1"), sentry_traces_sample_rate=0.25)
        assert init_sentry(config) is True
        assert sentry_sdk.get_client().options["traces_sample_rate"] == 0.25


class TestLmlSpans:
    async def test_each_lml_call_is_a_span_when_tracing_is_on(self, transport: CapturingTransport) -> None:
        """A lookup inside a transaction adds an http.client span with the call's outcome."""
        sentry_sdk.init(dsn="https://key@sentry.example/1", transport=transport, traces_sample_rate=1.0)

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"results": [], "search_type": "none"})

        settings = AppConfig(lml_url="http://lml.test", lml_rate_per_min=600)
        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        client = build_lml_client(settings, http, pool=None, host=None)
        with sentry_sdk.start_transaction(name="GET /library/rotation/<id>/tracks"):
            await client.lookup("Autechre", "Confield")
        sentry_sdk.flush()
        await http.aclose()
        items = [item for envelope in transport.envelopes for item in envelope.items]
        transactions: list[dict[str, Any]] = [
            item.payload.json for item in items if item.type == "transaction" and item.payload.json is not None
        ]
        assert len(transactions) == 1
        spans = {s["span_id"]: s for s in transactions[0]["spans"]}
        [call] = [s for s in spans.values() if s["op"] == "lml.call"]
        assert (call["description"], call["data"]["lml.outcome"], call["data"]["lml.priority"]) == (
            "LML lookup",
            "ok",
            "live",
        )
        [request] = [s for s in spans.values() if s["op"] == "http.client"]
        assert request["parent_span_id"] == call["span_id"]
