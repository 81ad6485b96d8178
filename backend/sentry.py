"""Sentry set-up: only when SENTRY_DSN is set, with the Sanic integration (no PII: the SDK's default)."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.sanic import SanicIntegration

from backend.config import AppConfig


def init_sentry(config: AppConfig) -> bool:
    """Initialise the SDK when a DSN is configured; return whether it did."""
    if config.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=config.sentry_dsn.reveal(),
        environment=config.sentry_environment,
        integrations=[SanicIntegration()],
        traces_sample_rate=config.sentry_traces_sample_rate,
    )
    return True
