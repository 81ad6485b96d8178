"""The HTTP edge every request crosses: request ids, CORS (upstream's credentialed contract), ETags, auth,
request metrics."""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar, cast

import sentry_sdk
from sanic import Blueprint, Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from backend.auth import CATALOG_READ
from backend.context import App

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# The request being handled, for log lines (backend.logging reads it).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# station.md §4: what the DJ web app's browser is allowed to send and read.
CORS_METHODS = "GET, POST, DELETE, PATCH"
CORS_ALLOWED_HEADERS = "Content-Type, Authorization, X-Request-Id, X-Internal-Key"
CORS_EXPOSED_HEADERS = "X-Request-Id"
CORS_MAX_AGE_S = "600"

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[HTTPResponse]])


def request_id_of(request: Request) -> str:
    return str(getattr(request.ctx, "request_id", "") or "")


def protected(permission: str = CATALOG_READ) -> Callable[[Handler], Handler]:
    """Require a station JWT with ``permission`` before the handler does any database or LML work."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            request.ctx.principal = await request.app.ctx.auth.authenticate(
                request.headers.get("authorization"), permission
            )
            return await handler(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``*`` or any listed tag equal once ``W/`` is ignored."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


def json_with_etag(request: Request, body: bytes, etag: str) -> HTTPResponse:
    """200 with ``body`` and its weak ETag, or 304 when the caller already has it."""
    headers = {"ETag": etag}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(body, status=200, headers=headers, content_type="application/json")


async def preflight(request: Request, *_args: Any, **_kwargs: Any) -> HTTPResponse:
    """Answer a CORS preflight: 204, with the grant only for a configured origin (headers added below)."""
    response = HTTPResponse(status=204)
    origin = request.headers.get("origin")
    if origin and _allowed(cast(App, request.app), origin):
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE_S
    return response


def add_get(bp: Blueprint, uri: str, handler: Callable[..., Awaitable[HTTPResponse]], *, cors: bool = True) -> None:
    """Route GET and HEAD (load balancers probe with HEAD) to ``handler``, and CORS preflights to :func:`preflight`."""
    name = handler.__name__
    bp.add_route(handler, uri, methods=["GET", "HEAD"], name=name)  # type: ignore[arg-type]
    if cors:
        bp.add_route(preflight, uri, methods=["OPTIONS"], name=f"{name}_preflight")


def _allowed(app: App, origin: str) -> bool:
    return origin.rstrip("/").lower() in app.ctx.settings.cors_origins


def register(app: App) -> None:
    """Install the one request and one response middleware (request ids, CORS, request metrics). Sanic
    dispatches two signals around every middleware call, so each extra one costs every request: the
    metrics share these instead of having their own."""

    async def start(request: Request) -> None:
        request.ctx.started = time.perf_counter()
        given = request.headers.get(REQUEST_ID_HEADER.lower(), "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.ctx.request_id = request_id
        request_id_var.set(request_id)
        if sentry_sdk.get_client().is_active():  # the Sanic integration gives each request its own scope
            sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)

    async def finish(request: Request, response: BaseHTTPResponse) -> None:
        headers = response.headers
        headers[REQUEST_ID_HEADER] = request_id_of(request) or uuid.uuid4().hex
        headers["X-Worker"] = request.app.ctx.worker
        origin = request.headers.get("origin")
        if origin and request.app.ctx.settings.cors_origins:
            headers["Vary"] = "Origin"
            if _allowed(cast(App, request.app), origin):
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Allow-Credentials"] = "true"
                headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        metrics = getattr(request.app.ctx, "metrics", None)  # absent when METRICS_ENABLED=false
        if metrics is not None:
            route = request.route.path if request.route is not None else "unmatched"
            metrics.observe_request(route, request.method, response.status, time.perf_counter() - request.ctx.started)

    app.register_middleware(start, "request")
    app.register_middleware(finish, "response")
