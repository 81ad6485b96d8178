"""The auth service's JSON Web Key Set: fetched over HTTP, cached, refetched on an unknown ``kid`` with a cooldown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt import PyJWK, PyJWTError
from jwt.algorithms import AllowedPublicKeys

from .errors import AuthUnavailableError

logger = logging.getLogger(__name__)

# The only algorithms we verify, each with the JWK (kty, crv) it needs; crv None means "no curve".
# Never "none" and never HMAC: a symmetric alg would let a public key's bytes act as the secret.
ALGORITHM_KEY_TYPES: Mapping[str, tuple[str, str | None]] = {
    "EdDSA": ("OKP", "Ed25519"),  # better-auth's default
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}
ALLOWED_ALGORITHMS = frozenset(ALGORITHM_KEY_TYPES)

# A representative algorithm per key type, only to tell PyJWT how to parse the JWK.
_PARSE_ALGORITHM: Mapping[tuple[str, str | None], str] = {
    ("OKP", "Ed25519"): "EdDSA",
    ("RSA", None): "RS256",
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
}


@dataclass(frozen=True)
class Jwk:
    """One usable public key of the set."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own ``alg``, when it pins one
    key: AllowedPublicKeys

    def fits(self, alg: str) -> bool:
        """Whether a token signed with ``alg`` may be verified with this key."""
        if alg not in ALGORITHM_KEY_TYPES or (self.alg is not None and self.alg != alg):
            return False
        return ALGORITHM_KEY_TYPES[alg] == (self.kty, self.crv)


def parse_jwk(data: object) -> Jwk:
    """Turn one JWKS entry into a :class:`Jwk`.

    Raises:
        ValueError: the entry is not a public signing key of a type we verify (the message says why).
    """
    if not isinstance(data, dict):
        raise ValueError("not an object")
    kty, crv, alg, kid, use = (data.get(k) for k in ("kty", "crv", "alg", "kid", "use"))
    crv = crv if kty != "RSA" else None
    if not isinstance(kty, str) or not isinstance(crv, (str, type(None))) or (kty, crv) not in _PARSE_ALGORITHM:
        raise ValueError(f"unsupported key type kty={kty!r} crv={crv!r}")
    if alg is not None and (alg not in ALGORITHM_KEY_TYPES or ALGORITHM_KEY_TYPES[alg] != (kty, crv)):
        raise ValueError(f"alg {alg!r} is not allowed for kty={kty!r}")
    if use not in (None, "sig"):
        raise ValueError(f"use={use!r} is not 'sig'")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    try:
        key: Any = PyJWK(data, algorithm=_PARSE_ALGORITHM[(kty, crv)]).key
    except PyJWTError as exc:
        raise ValueError(f"unreadable key: {exc}") from exc
    if isinstance(key, (RSAPrivateKey, EllipticCurvePrivateKey, Ed25519PrivateKey)):
        key = key.public_key()  # a misconfigured set that publishes private parts still verifies
    return Jwk(kid=kid, kty=kty, crv=crv, alg=alg, key=key)


class JwksCache:
    """The key set behind ``url``, kept for ``max_age_s`` and refetched at most once per ``cooldown_s``.

    Concurrent callers that need a fetch share one (single-flight); callers whose ``kid`` is in a fresh set
    never wait. A failed fetch keeps the previous keys, so tokens signed with a known key still verify
    while the auth service is down.

    Args:
        http: the worker's shared client.
        url: the JWKS endpoint (better-auth: ``<base>/api/auth/jwks``).
        max_age_s: refetch a set older than this.
        cooldown_s: minimum time between two fetch attempts, successful or not.
        timeout_s: per-phase timeout of the fetch.
        clock: monotonic seconds; tests inject a fake one.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        max_age_s: float = 600.0,
        cooldown_s: float = 30.0,
        timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._url = url
        self._max_age_s = max_age_s
        self._cooldown_s = cooldown_s
        self._timeout = httpx.Timeout(timeout_s)
        self._clock = clock
        self._keys: tuple[Jwk, ...] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._last_error: str | None = None
        self._lock = asyncio.Lock()

    async def keys_for(self, kid: str | None, alg: str) -> tuple[Jwk, ...]:
        """Return the keys that may verify a token with this ``kid`` and ``alg`` (every fitting key if no kid).

        An empty result means the set was fetched and has no such key: the token is invalid.

        Raises:
            AuthUnavailableError: the set could not be fetched and no cached key fits.
        """
        if self._settled(kid):
            return self._matching(kid, alg)
        async with self._lock:
            now = self._clock()
            if not self._settled(kid) and (self._attempted_at is None or now - self._attempted_at >= self._cooldown_s):
                await self._fetch(now)
            keys = self._matching(kid, alg)
            if not keys and self._last_error is not None:
                raise AuthUnavailableError(self._last_error)
            return keys

    def _settled(self, kid: str | None) -> bool:
        """Whether the cached set is fresh and answers for ``kid`` (no fetch could change the answer)."""
        if self._keys is None or self._clock() - self._fetched_at >= self._max_age_s:
            return False
        return kid is None or any(key.kid == kid for key in self._keys)

    def _matching(self, kid: str | None, alg: str) -> tuple[Jwk, ...]:
        return tuple(k for k in self._keys or () if (kid is None or k.kid == kid) and k.fits(alg))

    async def _fetch(self, now: float) -> None:
        self._attempted_at = now
        started = time.perf_counter()
        try:
            response = await self._http.get(self._url, timeout=self._timeout)
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
                raise ValueError('body is not {"keys": [...]}')
        except (httpx.HTTPError, ValueError) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "jwks fetch failed url=%s error=%s cached_keys=%d ms=%d",
                self._url,
                self._last_error,
                len(self._keys or ()),
                (time.perf_counter() - started) * 1000,
            )
            return
        keys = []
        for index, entry in enumerate(body["keys"]):
            try:
                keys.append(parse_jwk(entry))
            except ValueError as exc:
                kid = entry.get("kid") if isinstance(entry, dict) else None
                logger.warning("jwks key skipped index=%d kid=%r reason=%s", index, kid, exc)
        self._keys, self._fetched_at, self._last_error = tuple(keys), now, None
        logger.info("jwks fetched url=%s keys=%d ms=%d", self._url, len(keys), (time.perf_counter() - started) * 1000)
