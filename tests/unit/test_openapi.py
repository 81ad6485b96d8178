"""The OpenAPI document: a valid OpenAPI 3.1 document that describes exactly the routes the app serves."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, get_args

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from sanic import Sanic

from backend.app import create_app
from backend.auth.errors import AuthError, Reason
from backend.config import AppConfig
from backend.openapi import openapi_document
from backend.routes.docs import render_docs
from backend.routes.errors import BEARER_CHALLENGE
from tests.openapi_check import assert_conforms, schema_errors

# Nothing listens here: building an app to list its routes opens no connection.
UNUSED_DSN = "postgresql://postgres@127.0.0.1:9/postgres"
METHODS = ("get", "head", "options", "post", "put", "patch", "delete")

# station.md §2, in its order: the fields of one rotation list element.
LIST_FIELDS = [
    "id", "code_letters", "code_artist_number", "code_number", "artist_name", "alphabetical_name", "album_title",
    "record_label", "label_id", "genre_name", "format_name", "rotation_id", "add_date", "rotation_add_date",
    "rotation_bin", "rotation_kill_date", "plays", "legacy_release_id", "reconciled_identity",
]  # fmt: skip

Operation = tuple[str, str]  # (METHOD, /path/{template})


def documented_operations(document: dict[str, Any]) -> set[Operation]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in METHODS if method in item}


def routed_operations(app: Sanic[Any, Any]) -> set[Operation]:
    """Every (method, path) the app's router serves, with Sanic's ``<name:type>`` written as ``{name}``."""
    return {
        (method, re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", route.uri))
        for route in app.router.routes
        for method in route.methods
    }


def build_app(**overrides: Any) -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = create_app(
        AppConfig(database_url=UNUSED_DSN, app_name="rp_openapi_" + uuid.uuid4().hex[:8]).replace(**overrides)
    )
    return app


def media_examples(document: dict[str, Any]) -> list[Any]:
    """``(where, example value, schema)`` of every example given on a media type or in a component schema."""
    found: list[Any] = []
    for path, item in document["paths"].items():
        for method in METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                for media, content in response.get("content", {}).items():
                    for name, example in content.get("examples", {}).items():
                        found.append((f"{method} {path} {status} {media} {name}", example["value"], content["schema"]))
    for name, schema in document["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            found.append((f"schema {name} example {i}", example, {"$ref": f"#/components/schemas/{name}"}))
    return found


class TestDocument:
    """The document itself."""

    def test_is_a_valid_openapi_3_1_document(self) -> None:
        """openapi-spec-validator accepts it as OpenAPI 3.1."""
        document = openapi_document()
        assert document["openapi"].startswith("3.1.")
        validate(document, cls=OpenAPIV31SpecValidator)

    def test_is_plain_json_and_fresh_on_every_call(self) -> None:
        """It round-trips through JSON, and changing one copy does not change the next."""
        first = openapi_document()
        assert json.loads(json.dumps(first)) == first
        first["paths"].clear()
        assert openapi_document()["paths"]

    def test_every_example_fits_its_schema(self) -> None:
        """The README/demo examples are valid instances of the schemas they illustrate."""
        examples = media_examples(openapi_document())
        assert len(examples) > 20
        for where, value, schema in examples:
            assert schema_errors(value, schema) == [], where

    def test_a_wrong_body_is_refused(self) -> None:
        """The checker is a real one: a list element missing a field, or a bad track, fails."""
        item = dict(openapi_document()["components"]["schemas"]["RotationListItem"]["examples"][0])
        del item["plays"]
        assert schema_errors([item], {"$ref": "#/components/schemas/RotationList"})
        track = {"position": "A1", "title": "x", "duration": 3, "artists": []}
        assert schema_errors([track], {"$ref": "#/components/schemas/Tracklist"})

    def test_the_list_item_has_the_19_fields_of_station_md(self) -> None:
        """Every field of station.md §2 is required, and no other is allowed."""
        item = openapi_document()["components"]["schemas"]["RotationListItem"]
        assert item["required"] == LIST_FIELDS
        assert list(item["properties"]) == LIST_FIELDS and item["additionalProperties"] is False

    @pytest.mark.parametrize("reason", get_args(Reason))
    def test_every_auth_refusal_body_is_documented_for_both_rotation_routes(self, reason: Reason) -> None:
        """Each of upstream's 401/403 bodies conforms to the rotation routes' documented response."""
        error = AuthError(reason)
        body = json.dumps(error.body).encode()
        headers = {"X-Request-Id": "r1", "X-Worker": "w", "Content-Type": "application/json"}
        if error.status_code == 401:
            headers["WWW-Authenticate"] = BEARER_CHALLENGE
        for path in ("/library/rotation", "/library/rotation/7/tracks"):
            assert_conforms("GET", path, error.status_code, headers, body)

    def test_only_the_rotation_routes_need_a_station_jwt(self) -> None:
        """``bearerAuth`` is required by GET and HEAD of the two rotation paths and by nothing else."""
        secured = {
            (method.upper(), path)
            for path, item in openapi_document()["paths"].items()
            for method in METHODS
            if method in item and {"bearerAuth": []} in item[method].get("security", [])
        }
        assert secured == {
            ("GET", "/library/rotation"),
            ("HEAD", "/library/rotation"),
            ("GET", "/library/rotation/{rotation_id}/tracks"),
            ("HEAD", "/library/rotation/{rotation_id}/tracks"),
        }

    def test_head_operations_document_no_body(self) -> None:
        """Every HEAD response has headers and no content, and the same statuses as its GET."""
        for path, item in openapi_document()["paths"].items():
            if "head" in item:
                assert set(item["head"]["responses"]) == set(item["get"]["responses"]), path
                assert all("content" not in r for r in item["head"]["responses"].values()), path

    def test_the_page_lists_every_operation(self) -> None:
        """The /docs page shows every operation of the document and loads nothing from elsewhere."""
        document = openapi_document()
        page = render_docs(document)
        for path, item in document["paths"].items():
            for method in METHODS:
                if method in item:
                    assert f'id="{item[method]["operationId"]}"' in page, (method, path)
        assert not re.search(r"<(script|link|img|iframe)\b|\ssrc=", page), "the page must load nothing"


class TestRoutes:
    """The document against the app's router."""

    def test_every_route_has_an_operation_and_every_operation_a_route(self) -> None:
        """With the default settings the router and the document list the same (method, path) pairs."""
        assert routed_operations(build_app()) == documented_operations(openapi_document())

    def test_the_bench_route_is_the_one_undocumented_route(self) -> None:
        """With BENCH_ROUTES=true the router adds GET /_bench/floor, which the document leaves out on purpose."""
        extra = routed_operations(build_app(bench_routes=True)) - documented_operations(openapi_document())
        assert extra == {("GET", "/_bench/floor")}

    def test_without_metrics_only_metrics_is_not_routed(self) -> None:
        """With METRICS_ENABLED=false the documented GET/HEAD /metrics are the only operations not routed."""
        missing = documented_operations(openapi_document()) - routed_operations(build_app(metrics_enabled=False))
        assert missing == {("GET", "/metrics"), ("HEAD", "/metrics")}
