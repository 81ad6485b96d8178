"""``/openapi.json`` and ``/docs``: the OpenAPI document and a self-contained page of it (no token, no CDN)."""

from __future__ import annotations

import functools
import html
import json
import re
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from backend.openapi import openapi_document
from backend.routes.edge import add_get

bp = Blueprint("docs")

_METHODS = ("get", "head", "options", "post", "put", "patch", "delete")
_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
section{border:1px solid #ddd;border-radius:6px;padding:.4rem 1rem;margin:1rem 0}
.m{display:inline-block;min-width:5.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.head{color:#777}.options{color:#a60}
table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top;text-align:left}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:13px}code{background:#f2f2f2;padding:0 .2rem}
"""


@functools.cache
def openapi_body() -> bytes:
    """The document as JSON, serialised once per process (it depends on nothing but the code)."""
    return json.dumps(openapi_document(), ensure_ascii=False, separators=(",", ":")).encode()


@functools.cache
def docs_page() -> bytes:
    """The HTML page, rendered once per process."""
    return render_docs(openapi_document()).encode()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _text(value: object) -> str:
    """Escaped prose with its `code` spans shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(value))


def _ref_name(node: dict[str, Any]) -> str:
    ref = str(node.get("$ref", ""))
    return ref.rsplit("/", 1)[-1]


def _schema_link(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = _ref_name(schema)
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    for keyword, word in (("oneOf", "one of"), ("allOf", "all of")):
        if keyword in schema:
            return f"{word} " + ", ".join(_schema_link(part) for part in schema[keyword])
    return f"<code>{_e(json.dumps(schema, ensure_ascii=False))}</code>"


def _examples(media_type: dict[str, Any]) -> str:
    examples = media_type.get("examples", {})
    if not examples:
        return ""
    shown = json.dumps({name: example["value"] for name, example in examples.items()}, indent=2, ensure_ascii=False)
    return f"<details><summary>examples</summary><pre>{_e(shown)}</pre></details>"


def _render_operation(
    path: str, method: str, op: dict[str, Any], path_params: list[dict[str, Any]], components: dict[str, Any]
) -> str:
    parts = [
        f'<section id="{_e(op["operationId"])}"><h3><span class="m {method}">{method}</span> <code>{_e(path)}</code>'
        f" — {_e(op.get('summary', ''))}</h3>"
    ]
    if op.get("description"):
        parts.append(f"<p>{_text(op['description'])}</p>")
    security = op.get("security") or []
    schemes = ", ".join(f'<a href="#security-{_e(name)}">{_e(name)}</a>' for need in security for name in need)
    optional = " (only when configured)" if schemes and {} in security else ""
    parts.append(f"<p>Auth: {schemes or 'none'}{optional}</p>")
    params = [*path_params, *op.get("parameters", [])]
    if params:
        parts.append("<table><tr><th>Parameter</th><th>In</th><th>Required</th><th>Description</th></tr>")
        for ref in params:
            param = components["parameters"][_ref_name(ref)] if "$ref" in ref else ref
            parts.append(
                f"<tr><td><code>{_e(param['name'])}</code></td><td>{_e(param['in'])}</td>"
                f"<td>{'yes' if param.get('required') else 'no'}</td>"
                f"<td>{_text(param.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<table><tr><th>Status</th><th>Description</th><th>Body</th><th>Headers</th></tr>")
    for status, response in op["responses"].items():
        content = response.get("content", {})
        bodies = [
            f"{_e(media)}: {_schema_link(media_type['schema'])}{_examples(media_type)}"
            for media, media_type in content.items()
        ]
        headers = ", ".join(f'<a href="#header-{_e(name)}">{_e(name)}</a>' for name in response.get("headers", {}))
        parts.append(
            f"<tr><td><b>{_e(status)}</b></td><td>{_text(response['description'])}</td>"
            f"<td>{'<br>'.join(bodies) or 'none'}</td><td>{headers}</td></tr>"
        )
    parts.append("</table></section>")
    return "".join(parts)


def render_docs(document: dict[str, Any]) -> str:
    """A readable HTML page of ``document``: every operation, then the parameters, headers and schemas."""
    info = document["info"]
    components = document.get("components", {})
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(info['title'])} API</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(info['title'])} <small>{_e(info['version'])}</small></h1>",
        f'<p>OpenAPI {_e(document["openapi"])} — <a href="/openapi.json">/openapi.json</a></p>',
        f"<pre>{_e(info.get('description', ''))}</pre>",
        "<h2>Operations</h2>",
    ]
    for path, item in document["paths"].items():
        path_params = item.get("parameters", [])
        for method in _METHODS:
            if method in item:
                parts.append(_render_operation(path, method, item[method], path_params, components))
    for kind, title, anchor in (
        ("securitySchemes", "Security", "security"),
        ("headers", "Response headers", "header"),
        ("schemas", "Schemas", "schema"),
    ):
        parts.append(f"<h2>{title}</h2>")
        for name, value in components.get(kind, {}).items():
            parts.append(f'<h3 id="{anchor}-{_e(name)}">{_e(name)}</h3>')
            parts.append(f"<pre>{_e(json.dumps(value, indent=2, ensure_ascii=False))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


async def openapi_json(request: Request) -> HTTPResponse:
    """The OpenAPI document."""
    return HTTPResponse(openapi_body(), content_type="application/json")


async def docs(request: Request) -> HTTPResponse:
    """The document as a page."""
    return HTTPResponse(docs_page(), content_type="text/html; charset=utf-8")


add_get(bp, "/openapi.json", openapi_json, cors=False)
add_get(bp, "/docs", docs, cors=False)
