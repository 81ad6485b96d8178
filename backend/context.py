"""Typed application context: what listeners put on ``app.ctx``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Sanic
from sanic.config import Config

if TYPE_CHECKING:
    import asyncpg
    import httpx

    from backend.auth import Authenticator
    from backend.clients.host_budget import HostBudgetShared
    from backend.config import AppConfig
    from backend.db.gate import SchemaState
    from backend.metrics import Metrics
    from backend.services.caches import Caches
    from backend.services.graph import Services
    from backend.warm.follower import AnswerFollower
    from backend.warm.hints import HintListener
    from backend.warm.host import HostWalker


class Context:
    """Per-process state. Resources are opened in listeners and closed on stop."""

    settings: AppConfig
    caches: Caches
    worker: str
    started_at: float
    draining: bool
    pool: asyncpg.Pool
    services: Services
    follower: AnswerFollower
    hints: HintListener
    auth: Authenticator
    auth_http: httpx.AsyncClient
    schema_probe: tuple[float, SchemaState]
    metrics: Metrics
    # Main process only.
    schema_state: SchemaState
    host_walker: HostWalker | None
    budget: HostBudgetShared | None


App = Sanic[Config, Context]
