"""backend.auth: bearer parsing, JWT verification against a mocked JWKS, upstream's 401/403 bodies, caches, bypass."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from backend.auth import (
    Authenticator,
    AuthError,
    AuthSettings,
    AuthUnavailableError,
    JwksCache,
    Principal,
    auth_settings_from_env,
)
from backend.config import ConfigError
from devtools.auth_issuer import SigningKey, generate_private_key

ISSUER = "https://auth.wxyc.test"
AUDIENCE = "rotation-picker"
JWKS_URL = "https://auth.wxyc.test/api/auth/jwks"
START = 1_800_000_000.0

INVALID = {"error": "Unauthorized: Invalid or expired token."}
MISSING_HEADER = {"error": "Unauthorized: Missing Authorization header."}
MISSING_TOKEN = {"error": "Unauthorized: Missing token in Authorization header."}


@functools.cache
def signing_key(kid: str, alg: str) -> SigningKey:
    """One real key per (kid, alg), generated once per session (RSA generation is slow)."""
    family = {"EdDSA": "Ed25519", "ES256": "P-256"}.get(alg, "RSA")
    return SigningKey(kid=kid, alg=alg, private_key=generate_private_key(family))


def ed_key() -> SigningKey:
    return signing_key("ed-1", "EdDSA")


def rsa_key() -> SigningKey:
    return signing_key("rsa-1", "RS256")


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeJwks:
    """The auth service's JWKS endpoint, served through httpx.MockTransport."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys: list[object] = [key.jwk for key in keys]
        self.fetches = 0
        self.status = 200
        self.body: object | None = None  # overrides the key set when set
        self.error: Exception | None = None
        self.delay_s = 0.0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and str(request.url) == JWKS_URL
        self.fetches += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        body = {"keys": self.keys} if self.body is None else self.body
        return httpx.Response(self.status, json=body)


def make_claims(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "email": "dj@wxyc.test",
        "role": "dj",
        "iat": int(clock.now),
        "exp": int(clock.now) + 900,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def make_token(
    key: SigningKey,
    clock: FakeClock,
    *,
    alg: str | None = None,
    kid: str | None = None,
    with_kid: bool = True,
    **claims: Any,
) -> str:
    """A real token signed by ``key``, with its kid unless another (or none) is asked for."""
    headers = {"kid": kid or key.kid} if with_kid else {}
    return jwt.encode(make_claims(clock, **claims), key.private_key, algorithm=alg or key.alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token PyJWT refuses to produce (``none``, HMAC over a public key): header.payload.signature."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def make_settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": JWKS_URL}
    values.update(overrides)
    return AuthSettings(**values)


def make_authenticator(http: httpx.AsyncClient, clock: FakeClock, **overrides: Any) -> Authenticator:
    settings = make_settings(**overrides)
    jwks = JwksCache(
        http,
        JWKS_URL,
        max_age_s=settings.jwks_max_age_s,
        cooldown_s=settings.jwks_cooldown_s,
        timeout_s=settings.jwks_timeout_s,
        clock=clock,
    )
    return Authenticator(settings, jwks, clock=clock)


async def rejection(auth: Authenticator, header: str | None, permission: str = "catalog:read") -> AuthError:
    with pytest.raises(AuthError) as info:
        await auth.authenticate(header, permission)
    return info.value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_jwks() -> FakeJwks:
    return FakeJwks(ed_key(), rsa_key())


@pytest.fixture
async def http(fake_jwks: FakeJwks) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake_jwks.handle)) as client:
        yield client


@pytest.fixture
def auth(http: httpx.AsyncClient, clock: FakeClock) -> Authenticator:
    return make_authenticator(http, clock)


@pytest.fixture(params=[pytest.param("ed-1", id="EdDSA"), pytest.param("rsa-1", id="RS256")])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return ed_key() if request.param == "ed-1" else rsa_key()


class TestBearerHeader:
    @pytest.mark.parametrize("header", [pytest.param(None, id="absent"), pytest.param("", id="empty")])
    async def test_missing_header_is_401(self, auth: Authenticator, header: str | None) -> None:
        """Without an Authorization header the answer is upstream's 401 'Missing Authorization header'."""
        error = await rejection(auth, header)
        assert (error.status_code, error.body, error.reason) == (401, MISSING_HEADER, "missing_header")

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param("Basic dXNlcjpwdw==", id="basic"),
            pytest.param("Bearer", id="scheme-only"),
            pytest.param("Bearer    ", id="scheme-and-spaces"),
            pytest.param("Bearerabc.def.ghi", id="no-space"),
            pytest.param("abc.def.ghi", id="bare-token"),
        ],
    )
    async def test_header_without_bearer_token_is_401(self, auth: Authenticator, header: str) -> None:
        """A header that carries no Bearer token is upstream's 401 'Missing token in Authorization header'."""
        error = await rejection(auth, header)
        assert (error.status_code, error.body) == (401, MISSING_TOKEN)

    @pytest.mark.parametrize("scheme", ["Bearer ", "bearer ", "BEARER ", "Bearer    ", "bEaReR  "])
    async def test_scheme_is_case_insensitive_and_takes_many_spaces(
        self, auth: Authenticator, clock: FakeClock, scheme: str
    ) -> None:
        """The scheme matches in any case and may be followed by several spaces."""
        principal = await auth.authenticate(scheme + make_token(ed_key(), clock))
        assert principal == Principal(user_id="user-1", role="dj", email="dj@wxyc.test")


class TestTokenVerification:
    async def test_valid_token_authenticates(self, auth: Authenticator, clock: FakeClock, key: SigningKey) -> None:
        """A token signed by a published key, with the right iss, aud and a future exp, yields its principal."""
        principal = await auth.authenticate("Bearer " + make_token(key, clock, sub="u-9", role="musicDirector"))
        assert principal == Principal(user_id="u-9", role="musicDirector", email="dj@wxyc.test")

    @pytest.mark.parametrize(
        "claims",
        [
            pytest.param({"exp": START - 6}, id="expired"),
            pytest.param({"exp": None}, id="no-exp"),
            pytest.param({"exp": "1900000000"}, id="exp-string"),
            pytest.param({"exp": float("inf")}, id="exp-infinite"),
            pytest.param({"exp": True}, id="exp-bool"),
            pytest.param({"nbf": START + 60}, id="not-yet-valid"),
            pytest.param({"aud": "another-service"}, id="wrong-aud"),
            pytest.param({"aud": ["another-service", "third"]}, id="aud-list-without-ours"),
            pytest.param({"aud": None}, id="no-aud"),
            pytest.param({"iss": "https://evil.test"}, id="wrong-iss"),
            pytest.param({"iss": None}, id="no-iss"),
            pytest.param({"sub": 42}, id="sub-not-a-string"),
        ],
    )
    async def test_bad_claims_are_401(
        self, auth: Authenticator, clock: FakeClock, key: SigningKey, claims: dict[str, Any]
    ) -> None:
        """A bad exp, nbf, aud, iss or sub claim is upstream's 401 'Invalid or expired token'."""
        error = await rejection(auth, "Bearer " + make_token(key, clock, **claims))
        assert (error.status_code, error.body, error.reason) == (401, INVALID, "invalid_token")

    @pytest.mark.parametrize(
        "claims",
        [
            pytest.param({"exp": START - 4}, id="expired-within-leeway"),
            pytest.param({"nbf": START + 4}, id="nbf-within-leeway"),
            pytest.param({"aud": ["another-service", AUDIENCE]}, id="aud-list-with-ours"),
        ],
    )
    async def test_tolerated_claims_authenticate(
        self, auth: Authenticator, clock: FakeClock, key: SigningKey, claims: dict[str, Any]
    ) -> None:
        """The 5 s leeway covers small clock skew, and aud may be a list that contains ours."""
        assert (await auth.authenticate("Bearer " + make_token(key, clock, **claims))).user_id == "user-1"

    async def test_signature_by_another_key_is_401(
        self, auth: Authenticator, clock: FakeClock, key: SigningKey
    ) -> None:
        """A token signed by an unpublished key under a published kid is invalid."""
        impostor = signing_key("impostor-" + key.kid, key.alg)
        error = await rejection(auth, "Bearer " + make_token(impostor, clock, kid=key.kid))
        assert (error.status_code, error.body) == (401, INVALID)

    async def test_tampered_payload_is_401(self, auth: Authenticator, clock: FakeClock, key: SigningKey) -> None:
        """Changing the payload of a signed token breaks its signature."""
        header, _, signature = make_token(key, clock).split(".")
        forged = _b64(json.dumps(make_claims(clock, role="stationManager")).encode())
        error = await rejection(auth, f"Bearer {header}.{forged}.{signature}")
        assert error.body == INVALID

    @pytest.mark.parametrize("token", ["abc", "a.b.c", "a.b", "....", "eyJhbGciOiJFZERTQSJ9.e30.AAAA", "é.é.é"])
    async def test_malformed_token_is_401(self, auth: Authenticator, token: str) -> None:
        """Garbage in the Bearer slot is an invalid token, never a 500."""
        assert (await rejection(auth, "Bearer " + token)).body == INVALID


class TestAlgorithms:
    async def test_alg_none_is_rejected(self, auth: Authenticator, clock: FakeClock) -> None:
        """An unsigned token (alg none) is invalid whatever its claims say."""
        token = hand_made_token({"alg": "none", "kid": "ed-1"}, make_claims(clock), lambda _: b"")
        assert (await rejection(auth, "Bearer " + token)).body == INVALID

    @pytest.mark.parametrize(
        "secret",
        [
            pytest.param(
                lambda key: key.private_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                id="pem",
            ),
            pytest.param(lambda key: json.dumps(key.jwk).encode(), id="jwk-json"),
        ],
    )
    @pytest.mark.parametrize("alg", ["HS256", "HS512"])
    async def test_hmac_signed_with_the_public_key_is_rejected(
        self,
        auth: Authenticator,
        clock: FakeClock,
        key: SigningKey,
        secret: Callable[[SigningKey], bytes],
        alg: str,
    ) -> None:
        """An HS* token whose secret is the published public key (the classic confusion attack) is invalid."""
        digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
        token = hand_made_token(
            {"alg": alg, "typ": "JWT", "kid": key.kid},
            make_claims(clock),
            lambda data: hmac.new(secret(key), data, digest).digest(),
        )
        assert (await rejection(auth, "Bearer " + token)).body == INVALID

    @pytest.mark.parametrize(
        ("signer", "alg", "kid"),
        [
            pytest.param(rsa_key, "RS256", "ed-1", id="RS256-header-on-OKP-key"),
            pytest.param(ed_key, "EdDSA", "rsa-1", id="EdDSA-header-on-RSA-key"),
            pytest.param(rsa_key, "PS256", "rsa-1", id="PS256-on-key-pinned-to-RS256"),
        ],
    )
    async def test_header_alg_must_fit_the_key(
        self, auth: Authenticator, clock: FakeClock, signer: Callable[[], SigningKey], alg: str, kid: str
    ) -> None:
        """The header alg must suit the selected key's type (and its own alg, when the JWK pins one)."""
        token = make_token(signer(), clock, alg=alg, kid=kid)
        assert (await rejection(auth, "Bearer " + token)).body == INVALID

    @pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "PS384", "PS512"])
    async def test_rsa_key_without_alg_verifies_every_rsa_algorithm(
        self, http: httpx.AsyncClient, fake_jwks: FakeJwks, clock: FakeClock, alg: str
    ) -> None:
        """An RSA JWK that pins no alg verifies RS* and PS* tokens."""
        key = signing_key("rsa-any", "RS256")
        fake_jwks.keys = [{k: v for k, v in key.jwk.items() if k != "alg"}]
        auth = make_authenticator(http, clock)
        assert (await auth.authenticate("Bearer " + make_token(key, clock, alg=alg))).role == "dj"

    async def test_ec_key_verifies_es256(self, http: httpx.AsyncClient, fake_jwks: FakeJwks, clock: FakeClock) -> None:
        """A P-256 key verifies ES256 tokens."""
        key = signing_key("ec-1", "ES256")
        fake_jwks.keys.append(key.jwk)
        auth = make_authenticator(http, clock)
        assert (await auth.authenticate("Bearer " + make_token(key, clock))).role == "dj"

    async def test_symmetric_and_broken_jwks_entries_are_skipped(
        self, http: httpx.AsyncClient, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """oct keys, unknown types and unreadable entries are ignored; the usable keys still verify."""
        secret = b"a-shared-secret-of-at-least-32-bytes"
        fake_jwks.keys = [
            {"kty": "oct", "kid": "hmac-1", "k": _b64(secret), "alg": "HS256"},
            {"kty": "OKP", "crv": "X25519", "kid": "x-1", "x": "AAAA"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "broken", "x": "!!"},
            {**ed_key().jwk, "kid": "enc", "use": "enc"},
            "not an object",
            ed_key().jwk,
        ]
        auth = make_authenticator(http, clock)
        assert (await auth.authenticate("Bearer " + make_token(ed_key(), clock))).role == "dj"
        token = jwt.encode(make_claims(clock), secret, algorithm="HS256", headers={"kid": "hmac-1"})
        assert (await rejection(auth, "Bearer " + token)).body == INVALID
        assert (await rejection(auth, "Bearer " + make_token(ed_key(), clock, kid="enc"))).body == INVALID

    async def test_token_without_kid_tries_every_fitting_key(
        self, http: httpx.AsyncClient, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """Without a kid, every key of the header alg's type is tried."""
        second = signing_key("ed-2", "EdDSA")
        fake_jwks.keys.append(second.jwk)
        auth = make_authenticator(http, clock)
        assert (await auth.authenticate("Bearer " + make_token(second, clock, with_kid=False))).role == "dj"
        impostor = signing_key("ed-impostor", "EdDSA")
        assert (await rejection(auth, "Bearer " + make_token(impostor, clock, with_kid=False))).body == INVALID


class TestAuthorization:
    @pytest.mark.parametrize(
        ("claims", "status", "body"),
        [
            pytest.param({"sub": None}, 403, {"error": "Forbidden: Missing user ID in token."}, id="no-sub"),
            pytest.param({"sub": ""}, 403, {"error": "Forbidden: Missing user ID in token."}, id="empty-sub"),
            pytest.param(
                {"banned": True, "banReason": "spam"}, 403, {"message": "Access denied", "reason": "spam"}, id="banned"
            ),
            pytest.param(
                {"banned": True},
                403,
                {"message": "Access denied", "reason": "Account suspended"},
                id="banned-no-reason",
            ),
            pytest.param({"role": None}, 403, {"error": "Forbidden: Missing role in token."}, id="no-role"),
            pytest.param({"role": ""}, 403, {"error": "Forbidden: Missing role in token."}, id="empty-role"),
            pytest.param({"role": "guest"}, 403, {"error": "Forbidden: Invalid role."}, id="unknown-role"),
            pytest.param({"role": ["dj"]}, 403, {"error": "Forbidden: Invalid role."}, id="role-not-a-string"),
            pytest.param(
                {"sub": None, "banned": True, "role": None},
                403,
                {"error": "Forbidden: Missing user ID in token."},
                id="user-id-checked-before-ban",
            ),
            pytest.param(
                {"banned": True, "role": "guest"},
                403,
                {"message": "Access denied", "reason": "Account suspended"},
                id="ban-checked-before-role",
            ),
            pytest.param({"role": "guest", "exp": START - 60}, 401, INVALID, id="claims-checked-before-role"),
        ],
    )
    async def test_rejections_match_upstream(
        self,
        auth: Authenticator,
        clock: FakeClock,
        key: SigningKey,
        claims: dict[str, Any],
        status: int,
        body: dict[str, str],
    ) -> None:
        """Each failed check answers upstream's status and body, in upstream's order."""
        error = await rejection(auth, "Bearer " + make_token(key, clock, **claims))
        assert (error.status_code, error.body) == (status, body)

    async def test_role_without_the_permission_is_403(
        self, auth: Authenticator, clock: FakeClock, key: SigningKey
    ) -> None:
        """A valid role that lacks the route's permission is upstream's 'insufficient permissions'."""
        error = await rejection(auth, "Bearer " + make_token(key, clock), permission="catalog:write")
        assert (error.status_code, error.body) == (403, {"error": "Forbidden: insufficient permissions"})

    @pytest.mark.parametrize(
        ("role", "effective"),
        [
            ("member", "member"),
            ("dj", "dj"),
            ("musicDirector", "musicDirector"),
            ("stationManager", "stationManager"),
            ("admin", "stationManager"),
            ("owner", "stationManager"),
        ],
    )
    async def test_every_station_role_reads_the_catalog(
        self, auth: Authenticator, clock: FakeClock, key: SigningKey, role: str, effective: str
    ) -> None:
        """All four station roles hold catalog:read; admin and owner act as stationManager."""
        principal = await auth.authenticate("Bearer " + make_token(key, clock, role=role))
        assert principal.role == effective

    async def test_id_claim_stands_in_for_sub(self, auth: Authenticator, clock: FakeClock) -> None:
        """A token without sub but with id uses id as the user id."""
        principal = await auth.authenticate("Bearer " + make_token(ed_key(), clock, sub=None, id="legacy-7"))
        assert principal.user_id == "legacy-7"

    def test_error_body_is_a_fresh_copy(self) -> None:
        """Mutating one error's body never changes the next one's."""
        AuthError("invalid_token").body["error"] = "changed"
        assert AuthError("invalid_token").body == INVALID


class TestJwksFetching:
    async def test_key_set_is_fetched_once_for_many_tokens(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """Within its max age the key set serves every token without another fetch."""
        for n in range(5):
            await auth.authenticate("Bearer " + make_token(ed_key(), clock, sub=f"user-{n}"))
        assert fake_jwks.fetches == 1

    async def test_concurrent_cold_requests_share_one_fetch(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """Requests arriving while the first fetch is in flight wait for it instead of fetching again."""
        fake_jwks.delay_s = 0.02
        tokens = [make_token(rsa_key() if n % 2 else ed_key(), clock, sub=f"user-{n}") for n in range(20)]
        principals = await asyncio.gather(*(auth.authenticate("Bearer " + t) for t in tokens))
        assert len(principals) == 20 and fake_jwks.fetches == 1

    async def test_unknown_kid_refetches_after_the_cooldown(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """A token with a new kid triggers a refetch once the cooldown has passed, and then verifies."""
        await auth.authenticate("Bearer " + make_token(ed_key(), clock))
        rotated = signing_key("ed-rotated", "EdDSA")
        fake_jwks.keys.append(rotated.jwk)
        clock.advance(31)
        assert (await auth.authenticate("Bearer " + make_token(rotated, clock))).role == "dj"
        assert fake_jwks.fetches == 2

    async def test_flood_of_unknown_kids_fetches_once_per_cooldown(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """However many bad kids arrive, the auth service is asked at most once per cooldown."""
        tokens = [make_token(ed_key(), clock, kid=f"bogus-{n}") for n in range(50)]
        results = await asyncio.gather(*(auth.authenticate("Bearer " + t) for t in tokens), return_exceptions=True)
        assert all(isinstance(r, AuthError) and r.body == INVALID for r in results)
        clock.advance(29)
        assert (await rejection(auth, "Bearer " + make_token(ed_key(), clock, kid="bogus-late"))).body == INVALID
        assert fake_jwks.fetches == 1
        clock.advance(2)
        await rejection(auth, "Bearer " + make_token(ed_key(), clock, kid="bogus-after"))
        assert fake_jwks.fetches == 2

    async def test_key_set_is_refetched_after_its_max_age(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """A key set older than 10 minutes is fetched again, so a retired key stops verifying."""
        await auth.authenticate("Bearer " + make_token(ed_key(), clock))
        fake_jwks.keys = [rsa_key().jwk]
        clock.advance(601)
        assert (await rejection(auth, "Bearer " + make_token(ed_key(), clock))).body == INVALID
        assert fake_jwks.fetches == 2

    async def test_fetched_set_without_the_kid_is_401_not_503(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """When the JWKS answered and lacks the kid, the token is invalid (the service is not unavailable)."""
        error = await rejection(auth, "Bearer " + make_token(ed_key(), clock, kid="nope"))
        assert (error.status_code, error.body, fake_jwks.fetches) == (401, INVALID, 1)


class TestJwksUnavailable:
    @pytest.mark.parametrize(
        "outage",
        [
            pytest.param({"status": 503}, id="503"),
            pytest.param({"status": 404}, id="404"),
            pytest.param({"error": httpx.ConnectError("refused")}, id="refused"),
            pytest.param({"error": httpx.ReadTimeout("slow")}, id="timeout"),
            pytest.param({"body": ["not", "a", "key", "set"]}, id="not-a-key-set"),
        ],
    )
    async def test_down_with_empty_cache_is_unavailable(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock, outage: dict[str, Any]
    ) -> None:
        """Without a cached key, an unreachable or broken JWKS is a 503 'auth service unavailable'."""
        for name, value in outage.items():
            setattr(fake_jwks, name, value)
        with pytest.raises(AuthUnavailableError) as info:
            await auth.authenticate("Bearer " + make_token(ed_key(), clock))
        assert (info.value.status_code, info.value.message) == (503, "auth service unavailable")

    async def test_failed_fetch_is_not_retried_within_the_cooldown(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """An outage costs one fetch per cooldown, not one per request; the next attempt can recover."""
        fake_jwks.status = 503
        for _ in range(10):
            with pytest.raises(AuthUnavailableError):
                await auth.authenticate("Bearer " + make_token(ed_key(), clock))
        assert fake_jwks.fetches == 1
        fake_jwks.status = 200
        clock.advance(30)
        assert (await auth.authenticate("Bearer " + make_token(ed_key(), clock))).role == "dj"
        assert fake_jwks.fetches == 2

    async def test_down_but_cached_key_fits_still_authenticates(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock, key: SigningKey
    ) -> None:
        """A stale key set is kept when the refetch fails, so known keys keep verifying."""
        await auth.authenticate("Bearer " + make_token(key, clock))
        fake_jwks.status = 503
        clock.advance(601)
        principal = await auth.authenticate("Bearer " + make_token(key, clock, sub="someone-else"))
        assert principal.user_id == "someone-else" and fake_jwks.fetches == 2

    async def test_down_and_kid_unknown_is_unavailable(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """When the refetch for an unknown kid fails, the answer is 503, not a confident 401."""
        await auth.authenticate("Bearer " + make_token(ed_key(), clock))
        fake_jwks.error = httpx.ConnectError("refused")
        clock.advance(31)
        with pytest.raises(AuthUnavailableError):
            await auth.authenticate("Bearer " + make_token(signing_key("ed-new", "EdDSA"), clock))

    async def test_unconfigured_auth_is_unavailable_after_the_header_checks(self, clock: FakeClock) -> None:
        """Without BETTER_AUTH_* settings every token is refused with 503; header errors still come first."""
        auth = Authenticator(AuthSettings(), None, clock=clock)
        assert (await rejection(auth, None)).body == MISSING_HEADER
        with pytest.raises(AuthUnavailableError):
            await auth.authenticate("Bearer " + make_token(ed_key(), clock))


class TestVerifiedTokenCache:
    async def test_repeated_token_skips_verification(
        self, auth: Authenticator, fake_jwks: FakeJwks, clock: FakeClock, key: SigningKey
    ) -> None:
        """A verified token is served from the cache: no JWKS and no key are needed until it expires."""
        header = "Bearer " + make_token(key, clock)
        first = await auth.authenticate(header)
        fake_jwks.keys, fake_jwks.status = [], 503
        clock.advance(700)  # past the key set's max age: any verification would refetch and fail
        assert await auth.authenticate(header) == first
        assert fake_jwks.fetches == 1

    async def test_cached_token_expires_with_its_exp(
        self, auth: Authenticator, clock: FakeClock, key: SigningKey
    ) -> None:
        """A cached token is honoured until exp plus the leeway and refused after."""
        header = "Bearer " + make_token(key, clock, exp=int(START) + 60)
        await auth.authenticate(header)
        clock.advance(64)
        assert (await auth.authenticate(header)).user_id == "user-1"
        clock.advance(2)
        assert (await rejection(auth, header)).body == INVALID

    async def test_cached_identity_is_authorized_per_permission(self, auth: Authenticator, clock: FakeClock) -> None:
        """The cache holds the verified claims; each call still checks the permission it asks for."""
        header = "Bearer " + make_token(ed_key(), clock)
        await auth.authenticate(header)
        assert (await rejection(auth, header, permission="catalog:write")).reason == "insufficient_permissions"
        banned = "Bearer " + make_token(ed_key(), clock, banned=True)
        assert (await rejection(auth, banned)).reason == "banned"
        assert (await rejection(auth, banned)).reason == "banned"

    async def test_cache_is_bounded_and_evicts_least_recently_used(
        self, http: httpx.AsyncClient, fake_jwks: FakeJwks, clock: FakeClock
    ) -> None:
        """Any number of distinct tokens fits in a bounded cache; an evicted token is verified again."""
        auth = make_authenticator(http, clock, token_cache_max=3)
        headers = ["Bearer " + make_token(ed_key(), clock, sub=f"user-{n}") for n in range(10)]
        for header in headers:
            await auth.authenticate(header)
        assert auth.stats()["size"] == 3 and auth.stats()["maxsize"] == 3
        fake_jwks.keys = []
        clock.advance(601)  # verification now refetches an empty set
        assert (await auth.authenticate(headers[-1])).user_id == "user-9"
        assert (await rejection(auth, headers[0])).body == INVALID


class TestDevBypass:
    async def test_bypass_with_development_mode_accepts_any_bearer_token(self, clock: FakeClock) -> None:
        """With AUTH_DEV_BYPASS in a development APP_ENV any Bearer token is a stationManager; no JWKS needed."""
        auth = Authenticator(AuthSettings(dev_bypass=True, app_env="development"), None, clock=clock)
        assert auth.dev_bypass_active
        principal = await auth.authenticate("Bearer not-even-a-jwt")
        assert principal.role == "stationManager"

    @pytest.mark.parametrize(
        ("header", "body"), [pytest.param(None, MISSING_HEADER, id="absent"), pytest.param("Basic x", MISSING_TOKEN)]
    )
    async def test_bypass_still_needs_a_bearer_header(
        self, clock: FakeClock, header: str | None, body: dict[str, str]
    ) -> None:
        """The bypass skips verification, not the header checks."""
        auth = Authenticator(AuthSettings(dev_bypass=True, app_env="test"), None, clock=clock)
        assert (await rejection(auth, header)).body == body

    @pytest.mark.parametrize("app_env", ["production", "staging", "", "Development-ish"])
    async def test_bypass_without_development_mode_has_no_effect(
        self, http: httpx.AsyncClient, clock: FakeClock, app_env: str
    ) -> None:
        """AUTH_DEV_BYPASS outside development or test verifies tokens as usual."""
        auth = make_authenticator(http, clock, dev_bypass=True, app_env=app_env)
        assert not auth.dev_bypass_active
        assert (await rejection(auth, "Bearer not-even-a-jwt")).body == INVALID

    def test_startup_log_warns_loudly_while_bypass_is_on(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """log_startup emits a WARNING naming the bypass while it is active."""
        auth = Authenticator(AuthSettings(dev_bypass=True, app_env="development"), None, clock=clock)
        with caplog.at_level(logging.INFO, logger="backend.auth"):
            auth.log_startup()
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert "AUTH DEV BYPASS ACTIVE" in caplog.text


class TestAuthSettingsFromEnv:
    def test_reads_the_better_auth_settings(self) -> None:
        """The three BETTER_AUTH_* variables configure verification; tuning keeps its defaults."""
        warnings: list[str] = []
        env = {"BETTER_AUTH_ISSUER": ISSUER, "BETTER_AUTH_AUDIENCE": AUDIENCE, "BETTER_AUTH_JWKS_URL": JWKS_URL}
        settings = auth_settings_from_env(env, warnings)
        assert settings == make_settings() and settings.configured and warnings == []
        assert (settings.jwks_timeout_s, settings.jwks_max_age_s, settings.jwks_cooldown_s) == (3.0, 600, 30)
        assert (settings.leeway_s, settings.token_cache_max) == (5, 10_000)

    def test_empty_environment_is_unconfigured(self) -> None:
        """Without any setting auth is unconfigured, in production mode, bypass off."""
        settings = auth_settings_from_env({}, [])
        assert not settings.configured and settings.app_env == "production" and not settings.dev_bypass_active

    @pytest.mark.parametrize("url", ["auth.wxyc.test/jwks", "ftp://auth.wxyc.test/jwks", "https://"])
    def test_malformed_jwks_url_names_the_key(self, url: str) -> None:
        """A JWKS URL that is not http(s) fails fast with an error naming BETTER_AUTH_JWKS_URL."""
        env = {"BETTER_AUTH_ISSUER": ISSUER, "BETTER_AUTH_AUDIENCE": AUDIENCE, "BETTER_AUTH_JWKS_URL": url}
        with pytest.raises(ValueError, match="BETTER_AUTH_JWKS_URL"):
            auth_settings_from_env(env, [])

    def test_partial_configuration_names_the_missing_keys(self) -> None:
        """Setting only some BETTER_AUTH_* variables fails fast naming the missing ones."""
        with pytest.raises(ConfigError, match="BETTER_AUTH_AUDIENCE"):
            auth_settings_from_env({"BETTER_AUTH_ISSUER": ISSUER, "BETTER_AUTH_JWKS_URL": JWKS_URL}, [])

    @pytest.mark.parametrize("app_env", ["development", "test", "Development", " test "])
    def test_bypass_takes_effect_in_a_development_mode(self, app_env: str) -> None:
        """AUTH_DEV_BYPASS=true with APP_ENV development or test turns the bypass on."""
        warnings: list[str] = []
        settings = auth_settings_from_env({"AUTH_DEV_BYPASS": "true", "APP_ENV": app_env}, warnings)
        assert settings.dev_bypass_active and warnings == []

    @pytest.mark.parametrize("env", [{}, {"APP_ENV": "production"}, {"APP_ENV": "staging"}])
    def test_bypass_without_a_development_mode_is_ignored_with_a_warning(self, env: dict[str, str]) -> None:
        """AUTH_DEV_BYPASS alone is ignored, and the warning says why."""
        warnings: list[str] = []
        settings = auth_settings_from_env({"AUTH_DEV_BYPASS": "true", **env}, warnings)
        assert not settings.dev_bypass_active and not settings.dev_bypass
        assert len(warnings) == 1 and "AUTH_DEV_BYPASS ignored" in warnings[0]

    def test_bad_tuning_values_warn_and_default(self) -> None:
        """A malformed tuning variable never fails boot; its warning names it."""
        warnings: list[str] = []
        settings = auth_settings_from_env({"AUTH_JWKS_TIMEOUT_MS": "fast", "AUTH_JWKS_COOLDOWN_S": "-1"}, warnings)
        assert (settings.jwks_timeout_s, settings.jwks_cooldown_s) == (3.0, 30)
        assert len(warnings) == 2 and "AUTH_JWKS_TIMEOUT_MS" in warnings[0] and "AUTH_JWKS_COOLDOWN_S" in warnings[1]
