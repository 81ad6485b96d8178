"""Typed, immutable application configuration read once from the environment."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sentry_sdk.utils import BadDsn, Dsn

from backend.auth.settings import AuthSettings, auth_settings_from_env
from backend.db.schemas import Schemas
from backend.envparse import (
    LOG_FORMATS,
    LOG_LEVELS,
    ConfigError,
    bool_setting,
    choice_setting,
    float_setting,
    int_setting,
    text_setting,
    url_setting,
)

__all__ = ["AppConfig", "ConfigError", "Secret", "validate_database_url"]


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# PostgreSQL keywords that cannot name a schema unquoted (pg_get_keywords() catcode R and T, PostgreSQL 13-18).
RESERVED_WORDS = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
    is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
    only or order outer overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using variadic verbose
    when where window with""".split()
)


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def validate_database_url(url: str) -> str:
    """Check that ``url`` is a PostgreSQL DSN asyncpg can use, or raise ConfigError."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"DATABASE_URL must start with postgresql:// (got scheme {parts.scheme!r})")
    if not parts.netloc and "host=" not in parts.query:
        raise ConfigError("DATABASE_URL has no host (neither user@host:port nor ?host=<socket dir>)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL has an invalid port: {exc}") from exc
    return url


def _identifier_setting(env: Mapping[str, str], name: str, default: str) -> str:
    """A PostgreSQL schema name: plain lower-case identifiers only, so it can go into SQL unquoted."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not _IDENTIFIER.fullmatch(raw):
        raise ConfigError(f"{name} must be a lower-case SQL identifier ([a-z_][a-z0-9_]*), got {raw!r}")
    if raw in RESERVED_WORDS or raw.startswith("pg_"):
        raise ConfigError(f"{name} cannot be a reserved SQL word or start with pg_, got {raw!r}")
    return raw


def _origins_setting(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated browser origins (scheme://host[:port]); none means no CORS headers at all."""
    origins: list[str] = []
    for item in (env.get(name) or "").split(","):
        text = item.strip().rstrip("/")
        if not text:
            continue
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ConfigError(f"{name} must list origins like https://dj.wxyc.org, got {item.strip()!r}")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def _sentry_dsn(env: Mapping[str, str]) -> Secret | None:
    raw = (env.get("SENTRY_DSN") or "").strip()
    if not raw:
        return None
    try:
        Dsn(raw)
    except BadDsn as exc:
        raise ConfigError(f"SENTRY_DSN is malformed: {exc}") from None
    return Secret(raw)


@dataclass(frozen=True)
class AppConfig:
    """Every setting of the service. Build it with :meth:`from_env` or directly in tests."""

    # PostgreSQL DSN. Unset means the server cannot start (``./scripts/serve`` sets it).
    database_url: str | None = None
    db_pool_max: int = 10
    db_command_timeout_ms: int = 10_000
    # The station's schema (adopted, never changed) and this service's own schema.
    station_schema: str = "wxyc_schema"
    service_schema: str = "rotation_picker"
    # Apply pending migrations of the service's own schema at startup (needs the privileges of
    # ``python -m backend migrate``; a least-privilege role only checks that they were applied).
    migrate_on_start: bool = True

    # LML base URL; unset means LML is unconfigured and tier 3 is skipped.
    lml_url: str | None = None
    lml_api_key: Secret | None = None
    lml_max_concurrent: int = 5
    lml_rate_per_min: int = 50
    lml_live_reserve: int = 3
    lml_queue_wait_ms: int = 5_000
    lml_breaker_threshold: int = 5
    lml_breaker_open_ms: int = 30_000
    lml_lookup_timeout_ms: int = 5_000
    lml_release_timeout_ms: int = 10_000

    # Caches.
    rotation_cache_max: int = 500
    release_cache_max: int = 500
    cold_cache_max: int = 1_000
    rotation_cache_ttl_s: int = 86_400
    release_cache_ttl_s: int = 86_400
    release_negative_ttl_s: int = 600
    lookup_cache_ttl_s: int = 300

    # The warm walk.
    warm_enabled: bool = True
    warm_pass_budget_ms: int = 1_800_000
    warm_per_row_pause_budget_ms: int = 600_000
    warm_live_activity_lookback_s: int = 60
    warm_live_activity_pause_ms: int = 30_000
    warm_pass_interval_s: int = 900
    warm_refresh_ahead_s: int = 7_200
    warm_retry_max_s: int = 60

    # Station JWTs (BETTER_AUTH_*), and the development bypass.
    auth: AuthSettings = field(default_factory=AuthSettings)

    # Prometheus metrics for the whole host at /metrics (a Bearer token protects it when set).
    metrics_enabled: bool = True
    metrics_token: Secret | None = None

    # HTTP edge.
    cors_origins: tuple[str, ...] = ()
    drain_timeout_s: int = 5
    access_log: bool = False
    # Expose /_bench/floor (benchmarks only).
    bench_routes: bool = False

    sentry_dsn: Secret | None = None
    sentry_environment: str = "development"
    sentry_traces_sample_rate: float = 0.0
    log_level: str = "INFO"
    log_format: str = "text"
    app_name: str = "rotation_picker"

    # Problems found while parsing tuning variables; logged once logging is set up.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def lml_configured(self) -> bool:
        """Whether tier 3 and release fetches can run at all."""
        return self.lml_url is not None

    @property
    def schemas(self) -> Schemas:
        return Schemas(self.station_schema, self.service_schema)

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level))

    def replace(self, **changes: object) -> AppConfig:
        """Return a copy with ``changes`` applied (tests and the demo use this)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppConfig:
        """Read the configuration from ``env`` (default: ``os.environ``).

        Raises:
            ConfigError: a URL, DSN, schema name or origin list is malformed.
        """
        env = os.environ if env is None else env
        w: list[str] = []
        db_url = (env.get("DATABASE_URL") or "").strip() or None
        if db_url is not None:
            validate_database_url(db_url)
        api_key = (env.get("LML_API_KEY") or "").strip()
        metrics_token = (env.get("METRICS_TOKEN") or "").strip()
        d = cls()
        station = _identifier_setting(env, "WXYC_SCHEMA_NAME", d.station_schema)
        service = _identifier_setting(env, "ROTATION_PICKER_SCHEMA_NAME", d.service_schema)
        if station == service:
            raise ConfigError("ROTATION_PICKER_SCHEMA_NAME must differ from WXYC_SCHEMA_NAME")

        def num(name: str, default: int, *, minimum: int = 1) -> int:
            return int_setting(env, name, default, w, minimum=minimum)

        return cls(
            database_url=db_url,
            db_pool_max=num("DB_POOL_MAX", d.db_pool_max),
            db_command_timeout_ms=num("DB_COMMAND_TIMEOUT_MS", d.db_command_timeout_ms),
            station_schema=station,
            service_schema=service,
            migrate_on_start=bool_setting(env, "MIGRATE_ON_START", d.migrate_on_start, w),
            lml_url=url_setting(env, "LIBRARY_METADATA_URL"),
            lml_api_key=Secret(api_key) if api_key else None,
            lml_max_concurrent=num("LML_CLIENT_MAX_CONCURRENT", d.lml_max_concurrent),
            lml_rate_per_min=num("LML_CLIENT_RATE_PER_MIN", d.lml_rate_per_min),
            lml_live_reserve=num("LML_LIVE_RESERVE", d.lml_live_reserve, minimum=0),
            lml_queue_wait_ms=num("LML_LIMITER_MAX_QUEUE_WAIT_MS", d.lml_queue_wait_ms),
            lml_breaker_threshold=num("LML_BREAKER_FAILURE_THRESHOLD", d.lml_breaker_threshold),
            lml_breaker_open_ms=num("LML_BREAKER_OPEN_MS", d.lml_breaker_open_ms),
            lml_lookup_timeout_ms=num("LML_LOOKUP_TIMEOUT_MS", d.lml_lookup_timeout_ms),
            lml_release_timeout_ms=num("LML_RELEASE_TIMEOUT_MS", d.lml_release_timeout_ms),
            rotation_cache_max=num("ROTATION_CACHE_MAX", d.rotation_cache_max),
            release_cache_max=num("RELEASE_CACHE_MAX", d.release_cache_max),
            cold_cache_max=num("COLD_CACHE_MAX", d.cold_cache_max),
            rotation_cache_ttl_s=num("ROTATION_CACHE_TTL_S", d.rotation_cache_ttl_s),
            release_cache_ttl_s=num("RELEASE_CACHE_TTL_S", d.release_cache_ttl_s),
            release_negative_ttl_s=num("RELEASE_NEGATIVE_TTL_S", d.release_negative_ttl_s),
            lookup_cache_ttl_s=num("LML_LOOKUP_CACHE_TTL_S", d.lookup_cache_ttl_s),
            warm_enabled=bool_setting(env, "WARM_ENABLED", d.warm_enabled, w),
            warm_pass_budget_ms=num("WARM_PASS_BUDGET_MS", d.warm_pass_budget_ms),
            warm_per_row_pause_budget_ms=num("WARM_PER_ROW_PAUSE_BUDGET_MS", d.warm_per_row_pause_budget_ms),
            warm_live_activity_lookback_s=num(
                "WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS", d.warm_live_activity_lookback_s, minimum=0
            ),
            warm_live_activity_pause_ms=num("WARM_LIVE_ACTIVITY_PAUSE_MS", d.warm_live_activity_pause_ms, minimum=0),
            warm_pass_interval_s=num("WARM_PASS_INTERVAL_S", d.warm_pass_interval_s),
            warm_refresh_ahead_s=num("WARM_REFRESH_AHEAD_S", d.warm_refresh_ahead_s, minimum=0),
            warm_retry_max_s=num("WARM_RETRY_MAX_S", d.warm_retry_max_s),
            auth=auth_settings_from_env(env, w),
            metrics_enabled=bool_setting(env, "METRICS_ENABLED", d.metrics_enabled, w),
            metrics_token=Secret(metrics_token) if metrics_token else None,
            cors_origins=_origins_setting(env, "FRONTEND_SOURCE"),
            drain_timeout_s=num("DRAIN_TIMEOUT_S", d.drain_timeout_s, minimum=0),
            access_log=bool_setting(env, "ACCESS_LOG", d.access_log, w),
            bench_routes=bool_setting(env, "BENCH_ROUTES", d.bench_routes, w),
            sentry_dsn=_sentry_dsn(env),
            sentry_environment=text_setting(env, "SENTRY_ENVIRONMENT", d.sentry_environment, w),
            sentry_traces_sample_rate=float_setting(
                env, "SENTRY_TRACES_SAMPLE_RATE", d.sentry_traces_sample_rate, w, minimum=0.0, maximum=1.0
            ),
            log_level=choice_setting(env, "LOG_LEVEL", d.log_level, LOG_LEVELS, w, upper=True),
            log_format=choice_setting(env, "LOG_FORMAT", d.log_format, LOG_FORMATS, w, upper=False),
            warnings=tuple(w),
        )
