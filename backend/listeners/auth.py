"""The station-JWT authenticator per worker, with its own short-timeout HTTP client for the JWKS."""

from __future__ import annotations

import httpx

from backend.auth import Authenticator
from backend.clients.factory import USER_AGENT, tls_context
from backend.context import App


def register(app: App) -> None:
    """Open the authenticator before serving; log how requests are authenticated at every start."""

    @app.before_server_start
    async def open_auth(app: App) -> None:
        settings = app.ctx.settings.auth
        app.ctx.auth_http = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT}, timeout=settings.jwks_timeout_s, verify=tls_context()
        )
        app.ctx.auth = Authenticator.from_settings(settings, app.ctx.auth_http)
        app.ctx.auth.log_startup()

    @app.after_server_stop
    async def close_auth(app: App) -> None:
        http = getattr(app.ctx, "auth_http", None)
        if http is not None:
            await http.aclose()
