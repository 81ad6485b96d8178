"""A local stand-in for the station's auth service: its own signing keys, a JWKS and real signed tokens."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

logger = logging.getLogger(__name__)

JWKS_PATH = "/api/auth/jwks"  # better-auth's JWT plugin
DEFAULT_AUDIENCE = "rotation-picker"

# alg -> key family; one current signing key per family.
_FAMILIES: Mapping[str, str] = {
    "EdDSA": "Ed25519",
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
}
_CURVES: Mapping[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


def generate_private_key(family: str) -> Any:
    """A fresh private key of ``family`` ("Ed25519", "RSA", "P-256", "P-384" or "P-521")."""
    if family == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(_CURVES[family])


def public_jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    """The public JWK of ``private_key`` with ``kid``, ``alg`` and ``use: sig``, as better-auth publishes it."""
    public = private_key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    """One key of the issuer: its id, algorithm and private half."""

    kid: str
    alg: str
    private_key: Any

    @property
    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key, self.kid, self.alg)


class AuthIssuer:
    """Serves a JWKS on 127.0.0.1 and mints tokens the service accepts (or, on request, rejects).

    Use as a context manager, or ``start()``/``stop()``. Keys are generated on first use per family
    (Ed25519 for ``EdDSA``, RSA for ``RS*``/``PS*``, EC for ``ES*``); old keys stay published after
    :meth:`rotate` unless retired.

    Args:
        audience: the ``aud`` of minted tokens.
        issuer: the ``iss`` of minted tokens; default the server's base URL, like better-auth.
        port: 0 picks a free port.
    """

    def __init__(self, *, audience: str = DEFAULT_AUDIENCE, issuer: str | None = None, port: int = 0) -> None:
        self.audience = audience
        self._issuer = issuer
        self._port = port
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}  # published, by kid
        self._current: dict[str, SigningKey] = {}  # family -> key used by mint
        self._fetches = 0
        self._down = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> AuthIssuer:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("AuthIssuer already started")
        self._server = _Server(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="auth-issuer", daemon=True
        )
        self._thread.start()
        logger.debug("auth issuer listening jwks_url=%s", self.jwks_url)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); later connections are refused."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=2.0)

    def __enter__(self) -> AuthIssuer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("AuthIssuer is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self._issuer if self._issuer is not None else self.base_url

    @property
    def jwks_url(self) -> str:
        return self.base_url + JWKS_PATH

    @property
    def fetch_count(self) -> int:
        """JWKS requests received, including those answered 503 while down."""
        with self._lock:
            return self._fetches

    @property
    def down(self) -> bool:
        """While True the JWKS endpoint answers 503."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value

    def jwks(self) -> dict[str, Any]:
        """The published key set, as served."""
        with self._lock:
            return {"keys": [key.jwk for key in self._keys.values()]}

    def rotate(self, alg: str = "EdDSA", *, retire_old: bool = False) -> str:
        """Publish a new key for ``alg``'s family and sign with it from now on; return its kid."""
        family = _FAMILIES[alg]
        key = SigningKey(kid=secrets.token_urlsafe(8), alg=alg, private_key=generate_private_key(family))
        with self._lock:
            old = self._current.get(family)
            if retire_old and old is not None:
                del self._keys[old.kid]
            self._keys[key.kid] = key
            self._current[family] = key
        return key.kid

    def retire(self, kid: str) -> None:
        """Stop publishing ``kid`` (tokens it signed no longer verify after a refetch)."""
        with self._lock:
            self._keys.pop(kid, None)

    def current_key(self, alg: str = "EdDSA") -> SigningKey:
        """The key :meth:`mint` signs ``alg`` tokens with (generated on first use)."""
        with self._lock:
            key = self._current.get(_FAMILIES[alg])
        if key is None:
            self.rotate(alg)
            return self.current_key(alg)
        return key

    def mint(
        self,
        role: str | None = "dj",
        *,
        sub: str | None = "dev-user-1",
        ttl_s: float = 900,
        alg: str = "EdDSA",
        kid: str | None = None,
        with_kid: bool = True,
        forge: bool = False,
        **claims: Any,
    ) -> str:
        """A signed token like better-auth's ``/token`` returns.

        Args:
            role: the ``role`` claim; None leaves it out.
            sub: the ``sub`` claim; None leaves it out.
            ttl_s: lifetime from now; negative for an already expired token.
            alg: the signing algorithm (its family's current key signs).
            kid: the header ``kid``; default the signing key's.
            with_kid: False leaves ``kid`` out of the header.
            forge: sign with a throwaway key of the same family under the published kid (bad signature).
            **claims: extra or overriding claims (``iss``, ``aud``, ``email``, ``banned``...); None removes one.
        """
        key = self.current_key(alg)
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": int(now + ttl_s),
            "sub": sub,
            "role": role,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"kid": key.kid if kid is None else kid} if with_kid else {}
        private_key = generate_private_key(_FAMILIES[alg]) if forge else key.private_key
        return jwt.encode(payload, private_key, algorithm=alg, headers=headers)

    def _serve_jwks(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._fetches += 1
        if self._down:
            return 503, {"message": "auth issuer is down"}
        return 200, self.jwks()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], issuer: AuthIssuer) -> None:
        self.issuer = issuer
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        status, body = self.server.issuer._serve_jwks() if self.path == JWKS_PATH else (404, {"message": "not found"})
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("auth issuer: " + format, *args)
