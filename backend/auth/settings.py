"""Auth settings: where the station's JWKS lives, which issuer and audience to accept, and the dev bypass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from backend.envparse import ConfigError, bool_setting, int_setting, url_setting

# APP_ENV values in which AUTH_DEV_BYPASS may take effect. Anything else (or unset) is production.
DEV_MODES = frozenset({"development", "test"})

# Role given to every request while the development bypass is active.
DEV_BYPASS_ROLE = "stationManager"


@dataclass(frozen=True)
class AuthSettings:
    """Everything the authenticator needs. Build it with :func:`auth_settings_from_env` or directly in tests."""

    # better-auth's `iss` and `aud` (BETTER_AUTH_ISSUER, BETTER_AUTH_AUDIENCE) and its JWKS endpoint.
    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    # AUTH_DEV_BYPASS as requested; it only takes effect together with a development APP_ENV.
    dev_bypass: bool = False
    app_env: str = "production"
    # JWKS fetch timeout (each connect/read/write/pool phase).
    jwks_timeout_s: float = 3.0
    # Refetch the key set after this long, like upstream's JOSE library (10 min).
    jwks_max_age_s: float = 600.0
    # At most one fetch per cooldown, however many unknown `kid`s arrive (upstream: 30 s).
    jwks_cooldown_s: float = 30.0
    # Verified tokens kept so the hot path skips signature checks; bounded LRU.
    token_cache_max: int = 10_000
    # Clock skew tolerated on `exp` and `nbf`, in seconds.
    leeway_s: float = 5.0

    @property
    def configured(self) -> bool:
        """Whether tokens can be verified at all (issuer, audience and JWKS URL are all set)."""
        return self.issuer is not None and self.audience is not None and self.jwks_url is not None

    @property
    def dev_bypass_active(self) -> bool:
        """Whether signature checks are skipped: AUTH_DEV_BYPASS *and* a development APP_ENV."""
        return self.dev_bypass and self.app_env in DEV_MODES


def _text_setting(env: Mapping[str, str], name: str) -> str | None:
    return (env.get(name) or "").strip() or None


def auth_settings_from_env(env: Mapping[str, str], warnings: list[str]) -> AuthSettings:
    """Read the auth settings from ``env``; tuning problems are appended to ``warnings`` and defaulted.

    Raises:
        ConfigError: (a ValueError) BETTER_AUTH_JWKS_URL is not an http(s) URL, or only some of
            BETTER_AUTH_ISSUER, BETTER_AUTH_AUDIENCE and BETTER_AUTH_JWKS_URL are set.
    """
    d = AuthSettings()
    required = {
        "BETTER_AUTH_ISSUER": _text_setting(env, "BETTER_AUTH_ISSUER"),
        "BETTER_AUTH_AUDIENCE": _text_setting(env, "BETTER_AUTH_AUDIENCE"),
        "BETTER_AUTH_JWKS_URL": url_setting(env, "BETTER_AUTH_JWKS_URL"),
    }
    missing = [name for name, value in required.items() if value is None]
    if 0 < len(missing) < len(required):
        raise ConfigError(f"{', '.join(missing)} must be set together with the other BETTER_AUTH_* settings")
    app_env = (_text_setting(env, "APP_ENV") or d.app_env).lower()
    dev_bypass = bool_setting(env, "AUTH_DEV_BYPASS", False, warnings)
    if dev_bypass and app_env not in DEV_MODES:
        warnings.append(f"AUTH_DEV_BYPASS ignored: APP_ENV={app_env!r} is not one of {sorted(DEV_MODES)}")
        dev_bypass = False
    return AuthSettings(
        issuer=required["BETTER_AUTH_ISSUER"],
        audience=required["BETTER_AUTH_AUDIENCE"],
        jwks_url=required["BETTER_AUTH_JWKS_URL"],
        dev_bypass=dev_bypass,
        app_env=app_env,
        jwks_timeout_s=int_setting(env, "AUTH_JWKS_TIMEOUT_MS", 3_000, warnings) / 1000,
        jwks_max_age_s=int_setting(env, "AUTH_JWKS_MAX_AGE_S", 600, warnings),
        jwks_cooldown_s=int_setting(env, "AUTH_JWKS_COOLDOWN_S", 30, warnings, minimum=0),
        token_cache_max=int_setting(env, "AUTH_TOKEN_CACHE_MAX", d.token_cache_max, warnings),
        leeway_s=int_setting(env, "AUTH_CLOCK_LEEWAY_S", 5, warnings, minimum=0),
    )
