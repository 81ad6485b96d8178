"""HTTP routes: thin handlers that validate, call one service method and shape the answer."""

from __future__ import annotations

from backend.context import App
from backend.routes import errors, health, rotation


def register(app: App) -> None:
    """Attach every blueprint and the error mapping to ``app``."""
    app.blueprint(rotation.bp)
    app.blueprint(health.bp)
    errors.register(app)
