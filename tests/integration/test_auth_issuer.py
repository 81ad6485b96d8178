"""The devtools auth issuer over loopback HTTP, verified by the real Authenticator with a real httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from backend.auth import Authenticator, AuthError, AuthSettings, AuthUnavailableError
from devtools.auth_issuer import AuthIssuer


@pytest.fixture
def issuer() -> Iterator[AuthIssuer]:
    with AuthIssuer() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:  # loopback: never through a proxy
        yield client


def make_authenticator(issuer: AuthIssuer, http: httpx.AsyncClient, **overrides: Any) -> Authenticator:
    settings = AuthSettings(issuer=issuer.issuer, audience=issuer.audience, jwks_url=issuer.jwks_url, **overrides)
    return Authenticator.from_settings(settings, http)


class TestAuthIssuer:
    @pytest.mark.parametrize("alg", ["EdDSA", "RS256", "PS256", "ES256"])
    async def test_minted_dj_token_authenticates(self, issuer: AuthIssuer, http: httpx.AsyncClient, alg: str) -> None:
        """A dj token minted by the issuer verifies against its served JWKS."""
        issuer.current_key(alg)
        auth = make_authenticator(issuer, http)
        principal = await auth.authenticate("Bearer " + issuer.mint(role="dj", sub="dj-42", alg=alg))
        assert (principal.user_id, principal.role, issuer.fetch_count) == ("dj-42", "dj", 1)

    async def test_forged_and_expired_tokens_are_rejected(self, issuer: AuthIssuer, http: httpx.AsyncClient) -> None:
        """The issuer's broken tokens (wrong key, expired, wrong audience) are 401s."""
        auth = make_authenticator(issuer, http)
        for token in (issuer.mint(forge=True), issuer.mint(ttl_s=-60), issuer.mint(aud="someone-else")):
            with pytest.raises(AuthError) as info:
                await auth.authenticate("Bearer " + token)
            assert info.value.status_code == 401

    async def test_rotated_key_verifies_after_a_refetch(self, issuer: AuthIssuer, http: httpx.AsyncClient) -> None:
        """After the issuer rotates its key, a token with the new kid triggers one refetch and verifies."""
        auth = make_authenticator(issuer, http, jwks_cooldown_s=0.0)
        await auth.authenticate("Bearer " + issuer.mint())
        new_kid = issuer.rotate("EdDSA")
        principal = await auth.authenticate("Bearer " + issuer.mint(role="member"))
        assert principal.role == "member" and issuer.fetch_count == 2
        assert new_kid in {key["kid"] for key in issuer.jwks()["keys"]}

    async def test_new_kid_within_the_cooldown_is_rejected(self, issuer: AuthIssuer, http: httpx.AsyncClient) -> None:
        """Within the 30 s cooldown a new kid is not fetched for: the token is a 401 and the issuer is left alone."""
        auth = make_authenticator(issuer, http)
        await auth.authenticate("Bearer " + issuer.mint())
        issuer.rotate("EdDSA")
        with pytest.raises(AuthError):
            await auth.authenticate("Bearer " + issuer.mint())
        assert issuer.fetch_count == 1

    async def test_issuer_answering_503_is_unavailable(self, issuer: AuthIssuer, http: httpx.AsyncClient) -> None:
        """With the issuer down and nothing cached, authentication is AuthUnavailableError (503)."""
        issuer.down = True
        auth = make_authenticator(issuer, http)
        with pytest.raises(AuthUnavailableError):
            await auth.authenticate("Bearer " + issuer.mint())
        assert issuer.fetch_count == 1

    async def test_stopped_issuer_is_unavailable(self, issuer: AuthIssuer, http: httpx.AsyncClient) -> None:
        """A refused connection is AuthUnavailableError too, never a 500 or an allowed request."""
        auth = make_authenticator(issuer, http)
        token = issuer.mint()
        issuer.stop()
        with pytest.raises(AuthUnavailableError):
            await auth.authenticate("Bearer " + token)
