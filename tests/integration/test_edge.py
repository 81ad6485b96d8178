"""The HTTP edge through the real app: station JWTs, CORS for the DJ web app, request ids, ETags, HEAD."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from backend.auth import AuthSettings
from backend.context import App
from devtools import demo_catalog as dc
from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from tests.helpers import row_id

pytestmark = pytest.mark.pg

MakeApp = Callable[..., App]
WEB_APP = "https://dj.wxyc.org"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def request(app: App, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    _, response = await getattr(app.asgi_client, method)(path, headers=headers or {})
    return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestAuth:
    @pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
    @pytest.mark.parametrize(
        ("claims", "status", "body"),
        [
            pytest.param({}, 200, None, id="dj"),
            pytest.param({"role": "admin"}, 200, None, id="admin-is-station-manager"),
            pytest.param({"ttl_s": -60}, 401, {"error": "Unauthorized: Invalid or expired token."}, id="expired"),
            pytest.param({"aud": "other"}, 401, {"error": "Unauthorized: Invalid or expired token."}, id="wrong-aud"),
            pytest.param(
                {"iss": "https://evil.example"},
                401,
                {"error": "Unauthorized: Invalid or expired token."},
                id="wrong-iss",
            ),
            pytest.param(
                {"forge": True}, 401, {"error": "Unauthorized: Invalid or expired token."}, id="bad-signature"
            ),
            pytest.param({"sub": None}, 403, {"error": "Forbidden: Missing user ID in token."}, id="no-sub"),
            pytest.param(
                {"banned": True, "banReason": "spam"}, 403, {"message": "Access denied", "reason": "spam"}, id="banned"
            ),
            pytest.param(
                {"banned": True}, 403, {"message": "Access denied", "reason": "Account suspended"}, id="banned-default"
            ),
            pytest.param({"role": None}, 403, {"error": "Forbidden: Missing role in token."}, id="no-role"),
            pytest.param({"role": "superhero"}, 403, {"error": "Forbidden: Invalid role."}, id="unknown-role"),
        ],
    )
    async def test_the_route_answers_upstreams_status_and_body(
        self,
        make_app: MakeApp,
        seeded: Any,
        issuer: AuthIssuer,
        catalog: DemoCatalog,
        alg: str,
        claims: dict[str, Any],
        status: int,
        body: dict[str, Any] | None,
    ) -> None:
        """Every token case of station.md §3, signed for real with Ed25519 and RS256, through the picker route."""
        options = dict(claims)
        role = options.pop("role", "dj")
        token = issuer.mint(role, alg=alg, **options)
        response = await request(
            make_app(), "get", f"/library/rotation/{row_id(catalog, dc.TIER1)}/tracks", bearer(token)
        )
        assert response.status_code == status
        if body is not None:
            assert response.json == body

    @pytest.mark.parametrize(
        ("headers", "body"),
        [
            pytest.param({}, {"error": "Unauthorized: Missing Authorization header."}, id="no-header"),
            pytest.param(
                {"Authorization": "Basic abc"},
                {"error": "Unauthorized: Missing token in Authorization header."},
                id="basic",
            ),
            pytest.param(
                {"Authorization": "Bearer"},
                {"error": "Unauthorized: Missing token in Authorization header."},
                id="empty",
            ),
        ],
    )
    async def test_requests_without_a_bearer_token_are_401(
        self, make_app: MakeApp, headers: dict[str, str], body: dict[str, str]
    ) -> None:
        """Both rotation routes refuse a request without a token, before touching the database (it is down here),
        and say which scheme they want."""
        app = make_app(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
        for path in ("/library/rotation", "/library/rotation/1/tracks"):
            response = await request(app, "get", path, headers)
            assert (response.status_code, response.json) == (401, body)
            assert response.headers["www-authenticate"].startswith("Bearer ")

    async def test_a_new_signing_key_is_fetched_when_a_token_names_it(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog
    ) -> None:
        """A token with an unknown kid makes the service refetch the JWKS (after the cooldown) and accept it."""
        with AuthIssuer() as rotating:
            settings = AuthSettings(
                issuer=rotating.issuer, audience=rotating.audience, jwks_url=rotating.jwks_url, jwks_cooldown_s=0
            )
            app = make_app(auth=settings)
            path = f"/library/rotation/{row_id(catalog, dc.TIER1)}/tracks"
            assert (await request(app, "get", path, bearer(rotating.mint("dj")))).status_code == 200
            rotating.rotate("EdDSA")
            before = rotating.fetch_count
            assert (await request(app, "get", path, bearer(rotating.mint("dj")))).status_code == 200
            assert rotating.fetch_count > before

    async def test_jwks_down_is_503_never_allowed(self, make_app: MakeApp, seeded: Any) -> None:
        """With the auth service down and no cached key, the route answers 503, not 500 and not 200."""
        with AuthIssuer() as down:
            token = down.mint("dj")
            down.down = True
            settings = AuthSettings(issuer=down.issuer, audience=down.audience, jwks_url=down.jwks_url)
            response = await request(make_app(auth=settings), "get", "/library/rotation", bearer(token))
            assert (response.status_code, response.json) == (503, {"message": "auth service unavailable"})

    async def test_the_development_bypass_needs_development_mode(self, make_app: MakeApp, seeded: Any) -> None:
        """With the bypass on in development any Bearer token passes; health stays open without one."""
        app = make_app(auth=AuthSettings(dev_bypass=True, app_env="development"))
        assert (await request(app, "get", "/library/rotation", bearer("anything"))).status_code == 200
        assert (await request(app, "get", "/library/rotation")).status_code == 401
        assert (await request(app, "get", "/health")).status_code == 200

    async def test_health_routes_need_no_token(self, make_app: MakeApp, seeded: Any) -> None:
        """Liveness and readiness stay open."""
        app = make_app()
        assert (await request(app, "get", "/health")).status_code == 200
        assert (await request(app, "get", "/health/ready")).status_code == 200


class TestCors:
    async def test_a_preflight_from_the_web_app_is_granted_without_a_token(self, make_app: MakeApp) -> None:
        """OPTIONS from a configured origin answers 204 with upstream's credentialed contract, before auth."""
        app = make_app(cors_origins=(WEB_APP,))
        headers = {
            "Origin": WEB_APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
        }
        for path in ("/library/rotation", "/library/rotation/5/tracks"):
            response = await request(app, "options", path, headers)
            assert response.status_code == 204
            h = response.headers
            assert h["access-control-allow-origin"] == WEB_APP
            assert h["access-control-allow-credentials"] == "true"
            assert h["access-control-allow-methods"] == "GET, POST, DELETE, PATCH"
            assert h["access-control-allow-headers"] == "Content-Type, Authorization, X-Request-Id, X-Internal-Key"
            assert "origin" in h["vary"].lower()

    async def test_the_get_that_follows_exposes_the_request_id(
        self, make_app: MakeApp, seeded: Any, dj_headers: dict[str, str]
    ) -> None:
        """The actual GET from the allowed origin carries the grant and exposes X-Request-Id."""
        app = make_app(cors_origins=(WEB_APP,))
        response = await request(app, "get", "/library/rotation", {**dj_headers, "Origin": WEB_APP})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == WEB_APP
        assert response.headers["access-control-expose-headers"] == "X-Request-Id"

    async def test_another_origin_gets_no_grant(
        self, make_app: MakeApp, seeded: Any, dj_headers: dict[str, str]
    ) -> None:
        """A preflight or GET from an origin not configured carries no Access-Control-Allow-Origin."""
        app = make_app(cors_origins=(WEB_APP,))
        asking = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        preflight = await request(app, "options", "/library/rotation", asking)
        assert "access-control-allow-origin" not in preflight.headers
        response = await request(app, "get", "/library/rotation", {**dj_headers, "Origin": "https://evil.example"})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers

    async def test_no_configured_origin_means_no_cors_headers(
        self, make_app: MakeApp, seeded: Any, dj_headers: dict[str, str]
    ) -> None:
        """Without FRONTEND_SOURCE nothing is granted to anyone."""
        response = await request(make_app(), "get", "/library/rotation", {**dj_headers, "Origin": WEB_APP})
        assert not any(name.startswith("access-control-") for name in response.headers)


class TestRequestIds:
    async def test_a_callers_request_id_is_echoed(self, make_app: MakeApp) -> None:
        """X-Request-Id from the caller comes back unchanged."""
        response = await request(make_app(), "get", "/health", {"X-Request-Id": "web-123_abc.9"})
        assert response.headers["x-request-id"] == "web-123_abc.9"

    @pytest.mark.parametrize(
        "given", [None, "", "bad id with spaces", "x" * 200], ids=["none", "empty", "spaces", "long"]
    )
    async def test_a_missing_or_unusable_request_id_is_replaced(self, make_app: MakeApp, given: str | None) -> None:
        """Without a usable X-Request-Id the service makes one (32 hex characters)."""
        headers = {} if given is None else {"X-Request-Id": given}
        response = await request(make_app(), "get", "/health", headers)
        made = response.headers["x-request-id"]
        assert made != given and len(made) == 32 and int(made, 16) >= 0


class TestConditionalGets:
    async def test_a_repeated_picker_get_is_304(
        self, make_app: MakeApp, seeded: Any, catalog: DemoCatalog, dj_headers: dict[str, str], lml_fake: LmlFake
    ) -> None:
        """The tracks answer carries a weak ETag; If-None-Match with it gets 304 and no body."""
        app = make_app()
        path = f"/library/rotation/{row_id(catalog, dc.LML_INLINE)}/tracks"
        first = await request(app, "get", path, dj_headers)
        etag = first.headers["etag"]
        assert first.status_code == 200 and etag.startswith('W/"')
        again = await request(app, "get", path, {**dj_headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        other = await request(app, "get", path, {**dj_headers, "If-None-Match": 'W/"nope"'})
        assert other.status_code == 200 and other.json == first.json

    async def test_the_list_has_an_etag_that_changes_with_the_rows(
        self, make_app: MakeApp, seeded: Any, dj_headers: dict[str, str]
    ) -> None:
        """A changed rotation list has a new ETag, so the web app's cached copy is not reused."""
        app = make_app()
        first = await request(app, "get", "/library/rotation", dj_headers)
        assert (
            await request(app, "get", "/library/rotation", {**dj_headers, "If-None-Match": first.headers["etag"]})
        ).status_code == 304
        await seeded.execute("UPDATE wxyc_schema.rotation SET kill_date = CURRENT_DATE WHERE id = 1")
        changed = await request(app, "get", "/library/rotation", {**dj_headers, "If-None-Match": first.headers["etag"]})
        assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]

    async def test_head_works_wherever_get_does(
        self, make_app: MakeApp, seeded: Any, dj_headers: dict[str, str]
    ) -> None:
        """HEAD answers like GET without a body (load balancers probe with HEAD)."""
        app = make_app()
        for path, headers in (("/health", {}), ("/health/ready", {}), ("/library/rotation", dj_headers)):
            response = await request(app, "head", path, headers)
            assert response.status_code == 200 and response.content == b""
