"""Every documented response, produced through the real app (real PostgreSQL, LML fake, auth issuer), conforms.

``CASES`` names one way to produce each documented status of each operation; one test checks that together
they cover every response the document lists, the other runs each case and checks the answer against it.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from backend.auth import AuthSettings
from backend.config import Secret
from backend.context import App
from devtools import demo_catalog as dc
from devtools.auth_issuer import AuthIssuer
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from tests.conftest import create_station_database, drop_database
from tests.helpers import row_id
from tests.openapi_check import assert_conforms, document, operation, response_key

pytestmark = pytest.mark.pg

WEB_APP = "https://dj.wxyc.org"
LIST = "/library/rotation"
TRACKS = "/library/rotation/{rotation_id}/tracks"
GET_HEAD = ("GET", "HEAD")


@dataclass(frozen=True)
class Reply:
    """What the app answered, and the path it was asked for."""

    path: str
    status: int
    headers: dict[str, str]
    body: bytes


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    """The fixtures a case needs, and a request helper that sends what the web app sends."""

    make_app: Callable[..., App]
    catalog: DemoCatalog
    lml: LmlFake
    issuer: AuthIssuer
    pg_server_url: str
    request_id: str = "conformance-1"

    def app(self, **overrides: Any) -> App:
        """An app that grants CORS to the web app, so every answer carries (and checks) the CORS headers."""
        return self.make_app(**{"cors_origins": (WEB_APP,), **overrides})

    def token(self, role: str | None = "dj", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(role, **claims)}"}

    async def send(self, app: App, method: str, path: str, headers: dict[str, str] | None = None) -> Reply:
        sent = {"Origin": WEB_APP, "X-Request-Id": self.request_id, **(headers or {})}
        _, response = await getattr(app.asgi_client, method.lower())(path, headers=sent)
        return Reply(path, response.status_code, dict(response.headers), response.content)

    def tracks(self, outcome: str = dc.TIER1, n: int = 0) -> str:
        return TRACKS.format(rotation_id=row_id(self.catalog, outcome, n))


Produce = Callable[[World, str], Awaitable[Reply]]


@dataclass(frozen=True)
class Case:
    """One way to make ``methods`` on ``path`` answer ``status``."""

    id: str
    methods: tuple[str, ...]
    template: str
    status: int
    produce: Produce


# --- the rotation list --------------------------------------------------------------------------------------


async def list_ok(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, LIST, w.token())


async def list_not_modified(w: World, method: str) -> Reply:
    app = w.app()
    first = await w.send(app, "GET", LIST, w.token())
    return await w.send(app, method, LIST, {**w.token(), "If-None-Match": first.headers["etag"]})


async def list_no_header(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, LIST)


async def list_unknown_role(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, LIST, w.token("superhero"))


async def list_database_down(w: World, method: str) -> Reply:
    app = w.app(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    return await w.send(app, method, LIST, w.token())


async def auth_service_down(w: World, method: str, path: str) -> Reply:
    with AuthIssuer() as down:
        token = down.mint("dj")
        down.down = True
        settings = AuthSettings(issuer=down.issuer, audience=down.audience, jwks_url=down.jwks_url)
        return await w.send(w.app(auth=settings), method, path, {"Authorization": f"Bearer {token}"})


async def list_auth_down(w: World, method: str) -> Reply:
    return await auth_service_down(w, method, LIST)


# --- a row's tracks -----------------------------------------------------------------------------------------


async def tracks_resolved(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, w.tracks(), w.token())


async def tracks_unknown_id(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, TRACKS.format(rotation_id=2147483647), w.token())


async def tracks_not_modified(w: World, method: str) -> Reply:
    app = w.app()
    first = await w.send(app, "GET", w.tracks(), w.token())
    return await w.send(app, method, w.tracks(), {**w.token(), "If-None-Match": first.headers["etag"]})


async def tracks_bad_id(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, TRACKS.format(rotation_id="12abc"), w.token())


async def tracks_no_header(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, w.tracks())


async def tracks_bad_signature(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, w.tracks(), w.token(forge=True))


async def tracks_banned(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, w.tracks(), w.token(banned=True, banReason="spam"))


async def tracks_no_role(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, w.tracks(), w.token(None))


async def release_fault(w: World, method: str, kind: str, **overrides: Any) -> Reply:
    w.lml.add_fault("/api/v1/discogs/release", kind, count=1)
    return await w.send(w.app(**overrides), method, w.tracks(), w.token())


async def tracks_lml_422(w: World, method: str) -> Reply:
    return await release_fault(w, method, "422")


async def tracks_lml_500(w: World, method: str) -> Reply:
    return await release_fault(w, method, "500")


async def tracks_lml_timeout(w: World, method: str) -> Reply:
    return await release_fault(w, method, "timeout", lml_release_timeout_ms=300)


async def tracks_lml_unconfigured(w: World, method: str) -> Reply:
    return await w.send(w.app(lml_url=None), method, w.tracks(), w.token())


async def tracks_database_down(w: World, method: str) -> Reply:
    app = w.app(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    return await w.send(app, method, w.tracks(), w.token())


async def tracks_auth_down(w: World, method: str) -> Reply:
    return await auth_service_down(w, method, w.tracks())


async def tracks_limiter_shed(w: World, method: str) -> Reply:
    # One LML token per minute for the host: the first release fetch takes it, the next one is shed.
    app = w.app(lml_rate_per_min=1, lml_queue_wait_ms=200)
    first = await w.send(app, "GET", w.tracks(n=0), w.token())
    assert first.status == 200
    return await w.send(app, method, w.tracks(n=1), w.token())


async def preflight(w: World, method: str, path: str) -> Reply:
    asking = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    return await w.send(w.app(), method, path, asking)


async def list_preflight(w: World, method: str) -> Reply:
    return await preflight(w, method, LIST)


async def tracks_preflight(w: World, method: str) -> Reply:
    return await preflight(w, method, TRACKS.format(rotation_id=5))


# --- health, metrics, docs ----------------------------------------------------------------------------------


async def liveness(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, "/health")


async def ready_healthy(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, "/health/ready")


async def ready_degraded(w: World, method: str) -> Reply:
    return await w.send(w.app(lml_url=f"http://127.0.0.1:{closed_port()}"), method, "/health/ready")


async def ready_database_down(w: World, method: str) -> Reply:
    app = w.app(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    return await w.send(app, method, "/health/ready")


async def ready_schema_pending(w: World, method: str) -> Reply:
    url = await create_station_database(w.pg_server_url, migrated=False)
    try:
        return await w.send(w.app(database_url=url), method, "/health/ready")
    finally:
        await drop_database(w.pg_server_url, url)


async def metrics_open(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, "/metrics")


async def metrics_without_token(w: World, method: str) -> Reply:
    return await w.send(w.app(metrics_token=Secret("scrape-me")), method, "/metrics", w.token())


async def openapi_json(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, "/openapi.json")


async def docs_page(w: World, method: str) -> Reply:
    return await w.send(w.app(), method, "/docs")


CASES = [
    Case("list-200", GET_HEAD, LIST, 200, list_ok),
    Case("list-304", GET_HEAD, LIST, 304, list_not_modified),
    Case("list-401-no-header", GET_HEAD, LIST, 401, list_no_header),
    Case("list-403-unknown-role", GET_HEAD, LIST, 403, list_unknown_role),
    Case("list-503-database-down", GET_HEAD, LIST, 503, list_database_down),
    Case("list-503-auth-service-down", GET_HEAD, LIST, 503, list_auth_down),
    Case("list-204-preflight", ("OPTIONS",), LIST, 204, list_preflight),
    Case("tracks-200-resolved", GET_HEAD, TRACKS, 200, tracks_resolved),
    Case("tracks-200-unknown-id-is-empty", GET_HEAD, TRACKS, 200, tracks_unknown_id),
    Case("tracks-304", GET_HEAD, TRACKS, 304, tracks_not_modified),
    Case("tracks-400-bad-id", GET_HEAD, TRACKS, 400, tracks_bad_id),
    Case("tracks-401-no-header", GET_HEAD, TRACKS, 401, tracks_no_header),
    Case("tracks-401-bad-signature", GET_HEAD, TRACKS, 401, tracks_bad_signature),
    Case("tracks-403-banned", GET_HEAD, TRACKS, 403, tracks_banned),
    Case("tracks-403-no-role", GET_HEAD, TRACKS, 403, tracks_no_role),
    Case("tracks-4XX-lml-422-passed-through", GET_HEAD, TRACKS, 422, tracks_lml_422),
    Case("tracks-502-lml-5xx", GET_HEAD, TRACKS, 502, tracks_lml_500),
    Case("tracks-503-lml-unconfigured", GET_HEAD, TRACKS, 503, tracks_lml_unconfigured),
    Case("tracks-503-database-down", GET_HEAD, TRACKS, 503, tracks_database_down),
    Case("tracks-503-auth-service-down", GET_HEAD, TRACKS, 503, tracks_auth_down),
    Case("tracks-503-limiter-shed", GET_HEAD, TRACKS, 503, tracks_limiter_shed),
    Case("tracks-504-lml-timeout", GET_HEAD, TRACKS, 504, tracks_lml_timeout),
    Case("tracks-204-preflight", ("OPTIONS",), TRACKS, 204, tracks_preflight),
    Case("liveness-200", GET_HEAD, "/health", 200, liveness),
    Case("ready-200-healthy", GET_HEAD, "/health/ready", 200, ready_healthy),
    Case("ready-200-degraded", GET_HEAD, "/health/ready", 200, ready_degraded),
    Case("ready-503-database-down", GET_HEAD, "/health/ready", 503, ready_database_down),
    Case("ready-503-schema-pending", GET_HEAD, "/health/ready", 503, ready_schema_pending),
    Case("metrics-200", GET_HEAD, "/metrics", 200, metrics_open),
    Case("metrics-401-token-set", GET_HEAD, "/metrics", 401, metrics_without_token),
    Case("openapi-json-200", GET_HEAD, "/openapi.json", 200, openapi_json),
    Case("docs-200", GET_HEAD, "/docs", 200, docs_page),
]

RUNS = [
    pytest.param(case, method, id=f"{method}-{case.id}") for case in CASES for method in case.methods
]  # fmt: skip


@pytest.fixture
def world(
    make_app: Callable[..., App],
    seeded: asyncpg.Connection,
    catalog: DemoCatalog,
    lml_fake: LmlFake,
    issuer: AuthIssuer,
    pg_server_url: str,
) -> World:
    """The demo catalog seeded, with the session's LML fake and auth issuer."""
    return World(make_app, catalog, lml_fake, issuer, pg_server_url)


class TestCoverage:
    """The cases against the document."""

    def test_the_cases_produce_every_documented_response(self) -> None:
        """Each (method, path, response) of the document has a case, and every case's status is documented."""
        documented = {
            (method.upper(), path, key)
            for path, item in document()["paths"].items()
            for method, op in item.items()
            if method != "parameters"
            for key in op["responses"]
        }
        produced = set()
        for case in CASES:
            for method in case.methods:
                concrete = case.template.replace("{rotation_id}", "1")
                template, op = operation(method, concrete)
                assert template == case.template, case.id
                produced.add((method, template, response_key(op, case.status)))
        assert documented - produced == set(), "documented but never produced"
        assert produced - documented == set(), "produced but not documented"


class TestConformance:
    """Real answers against the document."""

    @pytest.mark.parametrize(("case", "method"), RUNS)
    async def test_the_answer_has_the_status_and_conforms(self, world: World, case: Case, method: str) -> None:
        """The case's request gets the case's status, and the response is one the document describes."""
        reply = await case.produce(world, method)
        assert reply.status == case.status, reply.body[:500]
        assert reply.headers["x-request-id"] == world.request_id
        assert_conforms(method, reply.path, reply.status, reply.headers, reply.body)
        if method == "GET" and reply.status not in (204, 304):
            assert reply.body, "a GET answer documented with content has one"
