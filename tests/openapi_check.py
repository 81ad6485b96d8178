"""Check a real HTTP response against the OpenAPI document: its status, headers, media type and body.

Schemas are checked by openapi-schema-validator's ``OAS31Validator`` (JSON Schema 2020-12 with the OpenAPI 3.1
vocabulary, formats checked), with ``#/components/...`` references resolved against the document itself.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from openapi_schema_validator import OAS31Validator, oas31_format_checker

from backend.openapi import openapi_document

JSON_MEDIA = "application/json"


@functools.cache
def document() -> dict[str, Any]:
    """The document under test (built once; never mutated here)."""
    return openapi_document()


def _template_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The path template and operation that ``method path`` (a concrete path, query allowed) is served by."""
    bare = path.split("?", 1)[0]
    for template, item in document()["paths"].items():
        if _template_pattern(template).fullmatch(bare) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path}: no operation in the document")


def response_key(op: dict[str, Any], status: int) -> str:
    """The key of ``op``'s response that ``status`` falls under: the exact code, else its ``NXX`` range."""
    responses = op["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return key
    raise AssertionError(f"status {status} is not documented for {op['operationId']} (has {sorted(responses)})")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = document()
    for part in str(ref).removeprefix("#/").split("/"):
        target = target[part]
    return dict(target)


def schema_errors(instance: object, schema: Mapping[str, Any]) -> list[str]:
    """Every way ``instance`` fails ``schema`` (references into the document's components allowed)."""
    root = {**schema, "components": document()["components"]}
    validator = OAS31Validator(root, format_checker=oas31_format_checker)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def assert_conforms(method: str, path: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Fail unless the response is one the document describes for ``method path``.

    Checks that the status is documented (exactly or by range), every required header is present and every
    documented header's value fits its schema, the body's media type is a documented one and the body fits
    its schema, and that a response documented without content has an empty body.

    Raises:
        AssertionError: naming every difference.
    """
    template, op = operation(method, path)
    key = response_key(op, status)
    response = op["responses"][key]
    where = f"{method} {template} -> {status} ({key})"
    given = {name.lower(): value for name, value in headers.items()}
    problems: list[str] = []
    for name, node in response.get("headers", {}).items():
        spec = _resolve(node)
        value = given.get(name.lower())
        if value is None:
            if spec.get("required"):
                problems.append(f"header {name} is required but missing")
            continue
        problems += [f"header {name}={value!r}: {error}" for error in schema_errors(value, spec["schema"])]
    content: dict[str, Any] = response.get("content", {})
    if not content:
        if body:
            problems.append(f"no body is documented, got {len(body)} bytes")
    else:
        media = given.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in content:
            problems.append(f"content-type {media!r} is not one of {sorted(content)}")
        else:
            try:
                instance: object = json.loads(body) if media == JSON_MEDIA else body.decode("utf-8")
            except ValueError as exc:
                problems.append(f"body is not {media}: {exc}")
            else:
                problems += [f"body {error}" for error in schema_errors(instance, content[media]["schema"])]
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)
