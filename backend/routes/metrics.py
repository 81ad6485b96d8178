"""``GET /metrics``: the host's Prometheus metrics (protected by METRICS_TOKEN when it is set)."""

from __future__ import annotations

import hmac
from typing import cast

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from backend.context import App
from backend.listeners.metrics import sync_worker
from backend.metrics import render

bp = Blueprint("metrics")


async def metrics(request: Request) -> HTTPResponse:
    """Every worker's and the walker's metrics, added up (prometheus-client's multiprocess mode)."""
    app = cast(App, request.app)
    token = app.ctx.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.reveal()}".encode()):
            return json(
                {"message": "metrics need the METRICS_TOKEN bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    sync_worker(app)
    body, content_type = render()
    return HTTPResponse(body, content_type=content_type)


bp.add_route(metrics, "/metrics", methods=["GET", "HEAD"])
