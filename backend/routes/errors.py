"""Map errors to JSON responses in one place."""

from __future__ import annotations

import logging

from sanic import Request
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

from backend.auth import AuthError
from backend.context import App
from backend.db.errors import DATABASE_UNAVAILABLE
from backend.errors import PickerError

logger = logging.getLogger(__name__)

# What a 401 asks for (RFC 9110 requires the header; the body stays upstream's).
BEARER_CHALLENGE = 'Bearer realm="rotation-picker"'


def register(app: App) -> None:
    """Install the handlers."""

    @app.exception(AuthError)
    async def auth_refused(request: Request, exc: AuthError) -> HTTPResponse:
        logger.info("request refused path=%s status=%d reason=%s", request.path, exc.status_code, exc.reason)
        headers = {"WWW-Authenticate": BEARER_CHALLENGE} if exc.status_code == 401 else None
        return json(exc.body, status=exc.status_code, headers=headers)

    @app.exception(PickerError)
    async def picker_error(request: Request, exc: PickerError) -> HTTPResponse:
        level = logging.WARNING if exc.status_code >= 500 else logging.INFO
        logger.log(level, "request failed path=%s status=%d error=%s", request.path, exc.status_code, exc)
        return json({"message": exc.message}, status=exc.status_code)

    @app.exception(list(DATABASE_UNAVAILABLE))
    async def database_down(request: Request, exc: Exception) -> HTTPResponse:
        logger.warning("database unavailable path=%s error=%r", request.path, exc)
        return json({"message": "database unavailable"}, status=503)

    @app.exception(SanicException)
    async def framework_error(request: Request, exc: SanicException) -> HTTPResponse:
        # Unknown routes (404), wrong methods (405), bad requests: JSON like everything else.
        status = getattr(exc, "status_code", 500) or 500
        message = str(exc) if status < 500 else "Internal server error"
        return json({"message": message}, status=status, headers=getattr(exc, "headers", None))

    @app.exception(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
        logger.exception("unhandled error path=%s", request.path)
        return json({"message": "Internal server error"}, status=500)
