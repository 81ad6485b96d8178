"""HTTP routes: thin handlers that validate, call one service method and shape the answer."""

from __future__ import annotations

from backend.context import App
from backend.routes import bench, docs, edge, errors, health, metrics, rotation


def register(app: App) -> None:
    """Attach every blueprint, the edge middleware and the error mapping to ``app``."""
    edge.register(app)
    app.blueprint(rotation.bp)
    app.blueprint(health.bp)
    app.blueprint(docs.bp)
    if app.ctx.settings.metrics_enabled:
        app.blueprint(metrics.bp)
    if app.ctx.settings.bench_routes:
        app.blueprint(bench.bp)
    errors.register(app)
