"""Authenticate a request's bearer token against the station's JWKS and check the caller's permission."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import InvalidSignatureError, PyJWTError
from jwt.types import Options

from backend.services.caches import ExpiringCache

from .errors import AuthError, AuthUnavailableError
from .jwks import ALLOWED_ALGORITHMS, JwksCache
from .permissions import CATALOG_READ, has_permission, resolve_role
from .settings import DEV_BYPASS_ROLE, AuthSettings

logger = logging.getLogger(__name__)

# Scheme case-insensitive, then one or more spaces (station.md §3).
_BEARER = re.compile(r"bearer +(.+)", re.IGNORECASE)

# exp/nbf are checked here against the injected clock; PyJWT checks signature, iss and aud.
_DECODE_OPTIONS: Options = {
    "require": ["exp", "iss", "aud"],
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,  # reject (not just warn about) RSA keys under 2048 bits
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    Attributes:
        user_id: the token's ``sub`` (or ``id``).
        role: the effective station role (``admin``/``owner`` become ``stationManager``).
        email: the token's ``email``, when it has one.
    """

    user_id: str
    role: str
    email: str | None


@dataclass(frozen=True)
class _Identity:
    """What a verified token claims; cached per token, authorized on every request."""

    user_id: str | None
    role: object
    email: str | None
    banned: bool
    ban_reason: str | None


_DEV_IDENTITY = _Identity("dev-bypass", DEV_BYPASS_ROLE, None, False, None)


def _non_empty_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    """A finite JSON number (NaN or Infinity would never expire), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def parse_bearer(authorization: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header.

    Raises:
        AuthError: ``missing_header`` when absent or empty, ``missing_token`` when not a Bearer token.
    """
    if not authorization or not authorization.strip():
        raise AuthError("missing_header")
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise AuthError("missing_token")
    return match.group(1)


class Authenticator:
    """Verifies station JWTs (signature, ``iss``, ``aud``, ``exp``) and checks role permissions.

    Verified tokens are kept in a bounded LRU until their ``exp`` (plus leeway), so a repeated token costs
    a dictionary lookup, not a signature check. Check order follows upstream: header, token, signature and
    claims, user id, banned, role present, role valid, permission.

    Args:
        settings: issuer, audience, leeway, cache size and the dev bypass.
        jwks: the key set; may be None only when the settings are not configured or the bypass is active.
        clock: wall-clock seconds since the epoch (``exp`` is one); tests inject a fake one.
    """

    def __init__(
        self, settings: AuthSettings, jwks: JwksCache | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        if jwks is None and settings.configured and not settings.dev_bypass_active:
            raise ValueError("a configured Authenticator needs a JwksCache")
        self._settings = settings
        self._jwks = jwks
        self._clock = clock
        self._verified: ExpiringCache[str, _Identity] = ExpiringCache(settings.token_cache_max, 0.0, clock)

    @classmethod
    def from_settings(cls, settings: AuthSettings, http: httpx.AsyncClient) -> Authenticator:
        """Build the authenticator and its JWKS cache from ``settings`` with the worker's ``http`` client."""
        jwks = None
        if settings.jwks_url is not None:
            jwks = JwksCache(
                http,
                settings.jwks_url,
                max_age_s=settings.jwks_max_age_s,
                cooldown_s=settings.jwks_cooldown_s,
                timeout_s=settings.jwks_timeout_s,
            )
        return cls(settings, jwks)

    @property
    def dev_bypass_active(self) -> bool:
        """Whether any Bearer token is accepted unchecked (AUTH_DEV_BYPASS in a development APP_ENV)."""
        return self._settings.dev_bypass_active

    @property
    def mode(self) -> str:
        """``bypass``, ``jwks`` or ``unconfigured`` (readiness reports it)."""
        if self._settings.dev_bypass_active:
            return "bypass"
        return "jwks" if self._settings.configured else "unconfigured"

    def log_startup(self) -> None:
        """Log how requests are authenticated; a loud WARNING while the dev bypass is on (call at every start)."""
        s = self._settings
        if s.dev_bypass_active:
            logger.warning(
                "AUTH DEV BYPASS ACTIVE: any Bearer token is accepted as role=%s app_env=%s; never use in production",
                DEV_BYPASS_ROLE,
                s.app_env,
            )
        elif s.configured:
            logger.info("auth configured issuer=%s audience=%s jwks_url=%s", s.issuer, s.audience, s.jwks_url)
        else:
            logger.warning("auth not configured: every protected request answers 503 (set BETTER_AUTH_*)")

    def stats(self) -> dict[str, int]:
        """Verified-token cache size, bound and evictions."""
        return self._verified.stats()

    async def authenticate(self, authorization: str | None, permission: str = CATALOG_READ) -> Principal:
        """Return the caller behind ``authorization`` if it holds ``permission``.

        Args:
            authorization: the raw ``Authorization`` header, None when absent.
            permission: the permission the route requires.

        Raises:
            AuthError: 401/403 with upstream's body (see ``backend.auth.errors``).
            AuthUnavailableError: the JWKS is unreachable and no cached key fits, or auth is not configured.
        """
        token = parse_bearer(authorization)
        if self._settings.dev_bypass_active:
            identity = _DEV_IDENTITY
        else:
            identity = self._verified.get(token) or await self._verify(token)
        return self._authorize(identity, permission)

    async def _verify(self, token: str) -> _Identity:
        s = self._settings
        if self._jwks is None or not s.configured:
            raise AuthUnavailableError("auth is not configured")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as exc:
            raise self._invalid(exc) from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS or not isinstance(kid, (str, type(None))):
            raise self._invalid(f"header alg={alg!r} not allowed or kid not a string")
        claims: dict[str, Any] | None = None
        for jwk in await self._jwks.keys_for(kid, alg):
            try:
                claims = jwt.decode(
                    token, jwk.key, algorithms=[alg], issuer=s.issuer, audience=s.audience, options=_DECODE_OPTIONS
                )
                break
            except InvalidSignatureError:
                continue  # a token without kid is tried against every fitting key
            except PyJWTError as exc:
                raise self._invalid(exc) from None
        if claims is None:
            raise self._invalid(f"no key verifies the token kid={kid!r} alg={alg}")
        exp = self._check_times(claims)
        identity = _Identity(
            user_id=_non_empty_str(claims.get("sub")) or _non_empty_str(claims.get("id")),
            role=claims.get("role"),
            email=_non_empty_str(claims.get("email")),
            banned=bool(claims.get("banned")),  # truthy, like upstream's JavaScript check
            ban_reason=_non_empty_str(claims.get("banReason")),
        )
        self._verified.set_until(token, identity, exp + s.leeway_s)
        return identity

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        """Check ``exp`` (required) and ``nbf`` against the clock with the leeway; return ``exp``."""
        now, leeway = self._clock(), self._settings.leeway_s
        exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf"))
        if exp is None or now > exp + leeway:
            raise self._invalid("expired or exp is not a number")
        if "nbf" in claims and (nbf is None or nbf > now + leeway):
            raise self._invalid("not yet valid or nbf is not a number")
        return exp

    @staticmethod
    def _invalid(cause: object) -> AuthError:
        detail = type(cause).__name__ if isinstance(cause, Exception) else cause
        logger.debug("token rejected reason=invalid_token detail=%s", detail)
        return AuthError("invalid_token")

    @staticmethod
    def _authorize(identity: _Identity, permission: str) -> Principal:
        if identity.user_id is None:
            raise AuthError("missing_user_id")
        if identity.banned:
            raise AuthError("banned", ban_reason=identity.ban_reason)
        if identity.role is None or identity.role == "":
            raise AuthError("missing_role")
        role = resolve_role(identity.role) if isinstance(identity.role, str) else None
        if role is None:
            raise AuthError("invalid_role")
        if not has_permission(role, permission):
            raise AuthError("insufficient_permissions")
        return Principal(user_id=identity.user_id, role=role, email=identity.email)
