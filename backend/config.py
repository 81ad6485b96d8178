"""Typed, immutable application configuration read once from the environment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A required setting is missing or malformed; the message names the key."""


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


def _int_setting(env: Mapping[str, str], name: str, default: int, warnings: list[str], *, minimum: int = 1) -> int:
    """Parse a tuning integer; a bad value warns (naming the key) and falls back to the default."""
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if text == "":
        warnings.append(f"{name} is empty; using default {default}")
        return default
    try:
        value = int(text)
    except ValueError:
        warnings.append(f"{name}={raw!r} is not an integer; using default {default}")
        return default
    if value < minimum:
        warnings.append(f"{name}={raw!r} must be >= {minimum}; using default {default}")
        return default
    return value


def _bool_setting(env: Mapping[str, str], name: str, default: bool, warnings: list[str]) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    warnings.append(f"{name}={raw!r} is not a boolean; using default {default}")
    return default


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


def _url_setting(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw


@dataclass(frozen=True)
class AppConfig:
    """Every setting of the service. Build it with :meth:`from_env` or directly in tests."""

    # PostgreSQL DSN. Unset means the server cannot start (``python server.py`` sets it).
    database_url: str | None = None
    db_pool_max: int = 10
    db_command_timeout_ms: int = 10_000
    # Apply pending migrations at startup (once, in the main process).
    migrate_on_start: bool = True

    # LML base URL; unset means LML is unconfigured and tier 3 is skipped.
    lml_url: str | None = None
    lml_api_key: Secret | None = None
    lml_max_concurrent: int = 5
    lml_rate_per_min: int = 50
    lml_queue_wait_ms: int = 5_000
    lml_breaker_threshold: int = 5
    lml_breaker_open_ms: int = 30_000
    lml_lookup_timeout_ms: int = 5_000
    lml_release_timeout_ms: int = 10_000

    # Caches.
    rotation_cache_max: int = 500
    release_cache_max: int = 500
    rotation_cache_ttl_s: int = 86_400
    release_cache_ttl_s: int = 86_400
    release_negative_ttl_s: int = 600
    lookup_cache_ttl_s: int = 300

    # Boot warmer.
    warm_enabled: bool = True
    warm_pass_budget_ms: int = 1_800_000
    warm_per_row_pause_budget_ms: int = 600_000
    warm_live_activity_lookback_s: int = 60
    warm_live_activity_pause_ms: int = 30_000
    warm_db_retry_ms: int = 300_000
    warm_refresh_interval_s: int = 72_000

    # Expose /_bench/floor (benchmarks only).
    bench_routes: bool = False

    sentry_dsn: Secret | None = None
    sentry_environment: str = "development"
    log_level: str = "INFO"
    app_name: str = "rotation_picker"

    # Problems found while parsing tuning variables; logged once logging is set up.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def lml_configured(self) -> bool:
        """Whether tier 3 and release fetches can run at all."""
        return self.lml_url is not None

    def replace(self, **changes: object) -> AppConfig:
        """Return a copy with ``changes`` applied (tests and the demo use this)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppConfig:
        """Read the configuration from ``env`` (default: ``os.environ``).

        Raises:
            ConfigError: DATABASE_URL, LIBRARY_METADATA_URL or SENTRY_DSN is malformed.
        """
        env = os.environ if env is None else env
        w: list[str] = []
        db_url = (env.get("DATABASE_URL") or "").strip() or None
        if db_url is not None:
            validate_database_url(db_url)
        api_key = (env.get("LML_API_KEY") or "").strip()
        dsn = (env.get("SENTRY_DSN") or "").strip()
        d = cls()
        return cls(
            database_url=db_url,
            db_pool_max=_int_setting(env, "DB_POOL_MAX", d.db_pool_max, w),
            db_command_timeout_ms=_int_setting(env, "DB_COMMAND_TIMEOUT_MS", d.db_command_timeout_ms, w),
            migrate_on_start=_bool_setting(env, "MIGRATE_ON_START", d.migrate_on_start, w),
            lml_url=_url_setting(env, "LIBRARY_METADATA_URL"),
            lml_api_key=Secret(api_key) if api_key else None,
            lml_max_concurrent=_int_setting(env, "LML_CLIENT_MAX_CONCURRENT", d.lml_max_concurrent, w),
            lml_rate_per_min=_int_setting(env, "LML_CLIENT_RATE_PER_MIN", d.lml_rate_per_min, w),
            lml_queue_wait_ms=_int_setting(env, "LML_LIMITER_MAX_QUEUE_WAIT_MS", d.lml_queue_wait_ms, w),
            lml_breaker_threshold=_int_setting(env, "LML_BREAKER_FAILURE_THRESHOLD", d.lml_breaker_threshold, w),
            lml_breaker_open_ms=_int_setting(env, "LML_BREAKER_OPEN_MS", d.lml_breaker_open_ms, w),
            lml_lookup_timeout_ms=_int_setting(env, "LML_LOOKUP_TIMEOUT_MS", d.lml_lookup_timeout_ms, w),
            lml_release_timeout_ms=_int_setting(env, "LML_RELEASE_TIMEOUT_MS", d.lml_release_timeout_ms, w),
            rotation_cache_max=_int_setting(env, "ROTATION_CACHE_MAX", d.rotation_cache_max, w),
            release_cache_max=_int_setting(env, "RELEASE_CACHE_MAX", d.release_cache_max, w),
            rotation_cache_ttl_s=_int_setting(env, "ROTATION_CACHE_TTL_S", d.rotation_cache_ttl_s, w),
            release_cache_ttl_s=_int_setting(env, "RELEASE_CACHE_TTL_S", d.release_cache_ttl_s, w),
            release_negative_ttl_s=_int_setting(env, "RELEASE_NEGATIVE_TTL_S", d.release_negative_ttl_s, w),
            lookup_cache_ttl_s=_int_setting(env, "LML_LOOKUP_CACHE_TTL_S", d.lookup_cache_ttl_s, w),
            warm_enabled=_bool_setting(env, "WARM_ENABLED", d.warm_enabled, w),
            warm_pass_budget_ms=_int_setting(env, "WARM_PASS_BUDGET_MS", d.warm_pass_budget_ms, w),
            warm_per_row_pause_budget_ms=_int_setting(
                env, "WARM_PER_ROW_PAUSE_BUDGET_MS", d.warm_per_row_pause_budget_ms, w
            ),
            warm_live_activity_lookback_s=_int_setting(
                env, "WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS", d.warm_live_activity_lookback_s, w, minimum=0
            ),
            warm_live_activity_pause_ms=_int_setting(
                env, "WARM_LIVE_ACTIVITY_PAUSE_MS", d.warm_live_activity_pause_ms, w, minimum=0
            ),
            warm_db_retry_ms=_int_setting(env, "WARM_DB_RETRY_MS", d.warm_db_retry_ms, w, minimum=0),
            warm_refresh_interval_s=_int_setting(env, "WARM_REFRESH_INTERVAL_S", d.warm_refresh_interval_s, w),
            bench_routes=_bool_setting(env, "BENCH_ROUTES", d.bench_routes, w),
            sentry_dsn=Secret(dsn) if dsn else None,
            sentry_environment=(env.get("SENTRY_ENVIRONMENT") or d.sentry_environment).strip(),
            log_level=(env.get("LOG_LEVEL") or d.log_level).strip().upper(),
            warnings=tuple(w),
        )
