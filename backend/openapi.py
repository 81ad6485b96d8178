"""The service's OpenAPI 3.1 document, built in code from the same constants the routes answer with."""

from __future__ import annotations

from typing import Any, get_args

from backend.auth.errors import DEFAULT_BAN_REASON, AuthError, AuthUnavailableError, Reason
from backend.errors import LmlTimeoutError, LmlUnconfiguredError

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
JSON = "application/json"
HTML = "text/html"

ROTATION_ID_MESSAGE = "rotation_id must be an integer between 1 and 2147483647"
DATABASE_UNAVAILABLE_MESSAGE = "database unavailable"
INT4_MAX = 2_147_483_647

_DESCRIPTION = """\
The backend of the DJ web app's rotation track picker.

* Errors are JSON: `{"message": ...}`; the auth refusals carry upstream's exact bodies (`{"error": ...}`, or
  `{"message": "Access denied", "reason": ...}` for a banned account).
* Every response carries `X-Request-Id` (the caller's when usable, else a new one) and `X-Worker`. When
  `FRONTEND_SOURCE` is configured and the request's `Origin` is one of its origins, responses carry the
  credentialed CORS grant; with any `Origin` they carry `Vary: Origin`.
* `HEAD` answers like `GET` with the same status and headers and no body.
* Not listed per operation: a path that does not exist answers 404 and a method a path does not route
  answers 405, both `{"message": ...}`; an unexpected failure answers 500 `{"message": "Internal server error"}`.
* `GET /_bench/floor` exists only with `BENCH_ROUTES=true` (the benchmarks' framework floor); it is not part
  of the API and not described here.
"""


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the app serves (``/_bench`` excepted, see its description).

    Returns:
        A fresh JSON-ready dict on every call (callers may cache or mutate it).
    """
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "rotation-picker", "version": API_VERSION, "description": _DESCRIPTION},
        "tags": [
            {"name": "rotation", "description": "The rotation list and a row's picker tracklist (station JWT)."},
            {"name": "health", "description": "Liveness and readiness (the org's health contract)."},
            {"name": "metrics", "description": "Prometheus metrics of the whole host."},
            {"name": "docs", "description": "This document and a readable page of it."},
        ],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": _bearer_auth(),
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The static `METRICS_TOKEN` (not a JWT); needed only when it is set.",
                },
            },
            "parameters": _parameters(),
            "headers": _headers(),
            "schemas": _schemas(),
        },
    }


def _track_example() -> dict[str, Any]:
    """The README's curl example (`./scripts/serve`)."""
    return {"position": "A1", "title": "Paper Lanterns", "duration": "3:41", "artists": ["The Velvet Orchards"]}


def _list_examples() -> list[dict[str, Any]]:
    """A linked and an unlinked row of the demo catalog, as `GET /library/rotation` answers them."""
    linked = {
        "id": 4,
        "code_letters": "AM",
        "code_artist_number": 32,
        "code_number": 1,
        "artist_name": "Amber Compass",
        "alphabetical_name": "Amber Compass",
        "album_title": "Tide & Telephone",
        "record_label": "Light in the Attic",
        "label_id": None,
        "genre_name": "Rock",
        "format_name": "LP",
        "rotation_id": 7,
        "add_date": "2026-08-13T12:00:00.000Z",
        "rotation_add_date": "2026-08-18",
        "rotation_bin": "M",
        "rotation_kill_date": None,
        "plays": 6,
        "legacy_release_id": 1000003,
        "reconciled_identity": {
            "discogs_artist_id": 6816482,
            "musicbrainz_artist_id": "9585386bf1fff1bfef884764f9523143",
            "wikidata_qid": "Q73120354",
            "spotify_artist_id": "KvYOT0QsTXDDPgPLIk4Oza",
            "apple_music_artist_id": None,
            "bandcamp_id": None,
        },
    }
    unlinked = {
        "id": None,
        "code_letters": None,
        "code_artist_number": None,
        "code_number": None,
        "artist_name": "The Tender Sparrows",
        "alphabetical_name": "The Tender Sparrows",
        "album_title": "Songs for the River",
        "record_label": "Drag City",
        "label_id": None,
        "genre_name": None,
        "format_name": None,
        "rotation_id": 100,
        "add_date": None,
        "rotation_add_date": "2026-08-10",
        "rotation_bin": "M",
        "rotation_kill_date": None,
        "plays": None,
        "legacy_release_id": None,
        "reconciled_identity": None,
    }
    return [linked, unlinked]


# --- paths ---------------------------------------------------------------------------------------------------


def _paths() -> dict[str, Any]:
    ready_responses = {
        "200": _json_response(
            "Ready: `healthy`, or `degraded` (LML not ok); the database and schema are ok.",
            {"allOf": [_ref("Readiness"), {"properties": {"status": {"enum": ["healthy", "degraded"]}}}]},
        ),
        "503": _json_response(
            "Not ready (`unhealthy`): the database is down, the schema is not current, or the worker is draining.",
            {"allOf": [_ref("Readiness"), {"properties": {"status": {"const": "unhealthy"}}}]},
        ),
    }
    return {
        "/library/rotation": {
            **_get_and_head(
                "Rotation",
                "rotation",
                "The active rotation list",
                "One element per (album, bin) of the active rotation rows, as upstream's `GET /library/rotation`"
                " answers (station.md §2).",
                _rotation_list_responses(),
                secured=True,
            ),
            "options": _preflight("preflightRotation"),
        },
        "/library/rotation/{rotation_id}/tracks": {
            "parameters": [_ref("RotationId", "parameters")],
            **_get_and_head(
                "RotationTracks",
                "rotation",
                "A rotation row's picker tracklist",
                "Resolved through the row's Discogs release id, the library identity bridge, then an LML lookup."
                " A row that does not exist, or resolves to nothing, answers `200 []` (never 404). A failed"
                " LML lookup also degrades to `200 []`; a failed release fetch answers 502, 503, 504 or LML's 4xx.",
                _rotation_tracks_responses(),
                secured=True,
            ),
            "options": _preflight("preflightRotationTracks"),
        },
        "/health": _get_and_head(
            "Liveness",
            "health",
            "Liveness",
            "Cheap: touches no dependency.",
            {"200": _json_response("Alive.", _ref("Liveness"))},
        ),
        "/health/ready": _get_and_head(
            "Readiness",
            "health",
            "Readiness",
            "Probes the database, the schema and LML concurrently, each under its own timeout, and reports"
            " this worker's caches, limiter, auth cache and warm state.",
            ready_responses,
        ),
        "/metrics": _get_and_head(
            "Metrics",
            "metrics",
            "The host's Prometheus metrics",
            "Every worker's and the walker's metrics added up (prometheus-client's multiprocess mode), in the"
            " Prometheus text format. Routed unless `METRICS_ENABLED=false`; when `METRICS_TOKEN` is set the"
            " request must carry it as a bearer token.",
            {
                "200": {
                    "description": "The exposition (`text/plain; version=...`).",
                    "headers": _response_headers(),
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _challenge(
                    _error_response(
                        "`METRICS_TOKEN` is set and the request does not carry it as `Authorization: Bearer <token>`.",
                        {"no_token": "metrics need the METRICS_TOKEN bearer token"},
                    )
                ),
            },
            security=[{}, {"metricsToken": []}],
        ),
        "/openapi.json": _get_and_head(
            "OpenApi",
            "docs",
            "This OpenAPI document",
            "Needs no token; built once per process.",
            {"200": _json_response("The document.", _ref("OpenApiDocument"))},
        ),
        "/docs": _get_and_head(
            "Docs",
            "docs",
            "A readable page of this document",
            "Self-contained HTML (no scripts, no CDN); needs no token; built once per process.",
            {
                "200": {
                    "description": "The page.",
                    "headers": _response_headers(),
                    "content": {HTML: {"schema": {"type": "string"}}},
                }
            },
        ),
    }


def _get_and_head(
    name: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    secured: bool = False,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    """``get`` and ``head`` operations (``add_get`` routes both); HEAD answers the same without a body.

    Args:
        secured: a station JWT is required (``bearerAuth``); the operation also takes ETag and CORS headers.
        security: the operation's security requirements when not ``secured`` (default: none).
    """
    parameters = [_ref("XRequestId", "parameters")]
    if secured:
        parameters += [_ref("IfNoneMatch", "parameters"), _ref("Origin", "parameters")]
        security = [{"bearerAuth": []}]
    get = {
        "operationId": f"get{name}",
        "tags": [tag],
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
        "security": security or [],
    }
    head = {
        **get,
        "operationId": f"head{name}",
        "summary": f"{summary} (headers only)",
        "description": "Like GET: the same status codes and headers, no body.",
        "responses": {
            status: {key: value for key, value in response.items() if key != "content"}
            for status, response in responses.items()
        },
    }
    return {"get": get, "head": head}


def _preflight(operation_id: str) -> dict[str, Any]:
    grant = ("Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age")
    return {
        "operationId": operation_id,
        "tags": ["rotation"],
        "summary": "CORS preflight",
        "description": "Answered before auth and without a token. A configured `Origin` gets upstream's credentialed"
        " grant (station.md §4); any other origin gets a 204 without `Access-Control-Allow-*` headers.",
        "security": [],
        "parameters": [
            _ref("Origin", "parameters"),
            _ref("AccessControlRequestMethod", "parameters"),
            _ref("AccessControlRequestHeaders", "parameters"),
            _ref("XRequestId", "parameters"),
        ],
        "responses": {
            "204": {
                "description": "Preflight answered (no body).",
                "headers": {**_response_headers(), **{name: _ref(name, "headers") for name in grant}},
            }
        },
    }


def _rotation_list_responses() -> dict[str, Any]:
    return {
        "200": _json_response(
            "The active rotation list, with its weak ETag.",
            _ref("RotationList"),
            etag=True,
            examples={"demo": {"summary": "A linked and an unlinked row", "value": _list_examples()}},
        ),
        "304": _not_modified(),
        "401": _unauthorized(),
        "403": _forbidden(),
        "503": _service_unavailable(include_lml=False),
    }


def _rotation_tracks_responses() -> dict[str, Any]:
    return {
        "200": _json_response(
            "The tracklist, with its weak ETag; `[]` when the row does not exist or nothing resolves.",
            _ref("Tracklist"),
            etag=True,
            examples={
                "tracks": {"summary": "A resolved row (README)", "value": [_track_example()]},
                "empty": {"summary": "Unknown id, no text, or a confirmed miss", "value": []},
            },
        ),
        "304": _not_modified(),
        "400": _error_response(
            "`rotation_id` is not digits in 1..2147483647; or LML answered 400 to the release fetch (passed through).",
            {"bad_id": ROTATION_ID_MESSAGE, "lml_400": "LML responded with 400: Bad Request"},
        ),
        "401": _unauthorized(),
        "403": _forbidden(),
        "4XX": _error_response(
            "LML's other 4xx to the release fetch, passed through with its status (e.g. 409, 422, 429). LML's 404"
            " is not passed through (it means `200 []`), and LML's 401/403 are a 502.",
            {"lml_422": "LML responded with 422: Unprocessable Entity"},
        ),
        "502": _error_response(
            "The release fetch failed: LML answered 5xx or 401/403 (our credentials), the network failed, or LML's"
            " body was not the documented shape.",
            {
                "lml_5xx": "LML responded with 503: Service Unavailable",
                "network": "LML request failed: All connection attempts failed",
                "credentials": "LML rejected our credentials: 401",
                "malformed": "LML returned a malformed release body: not JSON",
            },
        ),
        "503": _service_unavailable(include_lml=True),
        "504": _error_response("The release fetch timed out.", {"timeout": LmlTimeoutError().message}),
    }


def _not_modified() -> dict[str, Any]:
    return {
        "description": "`If-None-Match` matched the current ETag (weak comparison, or `*`): no body.",
        "headers": _response_headers(etag=True),
    }


def _unauthorized() -> dict[str, Any]:
    bodies = _auth_bodies(401)
    return _challenge(
        _json_response(
            "No usable bearer token: missing header, no token after the scheme, or a bad signature, expiry, issuer"
            " or audience.",
            _ref("Unauthorized"),
            examples={reason: {"value": body} for reason, body in bodies.items()},
        )
    )


def _challenge(response: dict[str, Any]) -> dict[str, Any]:
    """A 401 response with its ``WWW-Authenticate`` header."""
    response["headers"]["WWW-Authenticate"] = _ref("WWW-Authenticate", "headers")
    return response


def _forbidden() -> dict[str, Any]:
    bodies = _auth_bodies(403)
    return _json_response(
        "A valid token that may not read the catalog: no user id, banned, no role, or an unknown role. (A role"
        " without `catalog:read` would get `insufficient permissions`; every station role holds it today.)",
        {"oneOf": [_ref("Forbidden"), _ref("Banned")]},
        examples={reason: {"value": body} for reason, body in bodies.items()},
    )


def _service_unavailable(*, include_lml: bool) -> dict[str, Any]:
    messages = {
        "database": DATABASE_UNAVAILABLE_MESSAGE,
        "auth_service": AuthUnavailableError("").message,
    }
    description = (
        "The database is unavailable (down, or the service schema is not migrated), or the auth service's JWKS"
        " could not be fetched and no cached key fits the token"
    )
    if include_lml:
        messages["lml_unconfigured"] = LmlUnconfiguredError().message
        messages["limiter_shed"] = "LML limiter shed: shed_rate_limited"
        description += (
            "; or the row needs a release fetch and LML is not configured, or our LML limiter shed the fetch"
            " (breaker open, queue wait, rate limit)"
        )
    return _error_response(description + ".", messages)


def _auth_bodies(status: int) -> dict[str, dict[str, object]]:
    """Upstream's refusal bodies with ``status``, by reason (the source of truth is ``backend.auth.errors``)."""
    bodies: dict[str, dict[str, object]] = {}
    for reason in get_args(Reason):
        error = AuthError(reason, ban_reason="spam" if reason == "banned" else None)
        if error.status_code == status:
            bodies[reason] = error.body
    return bodies


def _json_response(
    description: str,
    schema: dict[str, Any],
    *,
    etag: bool = False,
    examples: dict[str, Any] | None = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = examples
    return {"description": description, "headers": _response_headers(etag=etag), "content": {JSON: media}}


def _error_response(description: str, messages: dict[str, str]) -> dict[str, Any]:
    examples = {name: {"value": {"message": message}} for name, message in messages.items()}
    return _json_response(description, _ref("Error"), examples=examples)


def _response_headers(*, etag: bool = False) -> dict[str, Any]:
    names = ["X-Request-Id", "X-Worker", "Vary", "Access-Control-Allow-Origin"]
    names += ["Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"]
    if etag:
        names.insert(0, "ETag")
    return {name: _ref(name, "headers") for name in names}


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


# --- components ----------------------------------------------------------------------------------------------


def _bearer_auth() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A station JWT from the auth service's `/token` (better-auth), signed EdDSA (Ed25519, the"
        " default) or RS256 and verified against its JWKS; `iss` and `aud` must match the configuration. The role"
        " (`member`, `dj`, `musicDirector`, `stationManager`; `admin` and `owner` count as `stationManager`) must"
        " hold `catalog:read`. The scheme is case-insensitive and may be followed by several spaces.",
    }


def _parameters() -> dict[str, Any]:
    def header(name: str, description: str, schema: dict[str, Any], example: str) -> dict[str, Any]:
        return {"name": name, "in": "header", "required": False, "description": description, "schema": schema,
                "example": example}  # fmt: skip

    return {
        "RotationId": {
            "name": "rotation_id",
            "in": "path",
            "required": True,
            "description": f"The rotation row's id: digits only, 1..{INT4_MAX} (leading zeros allowed). Anything"
            " else (a sign, a decimal point, letters, 0, a larger number) answers 400.",
            "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
            "example": "42",
        },
        "IfNoneMatch": header(
            "If-None-Match",
            "ETags the caller holds (or `*`); a weak match answers 304 without a body.",
            {"type": "string"},
            'W/"e0f507ca995a3dd7"',
        ),
        "XRequestId": header(
            "X-Request-Id",
            "The caller's request id, echoed back when it is 1-128 of `A-Za-z0-9._:-`; otherwise a new one is made.",
            {"type": "string"},
            "web-123_abc.9",
        ),
        "Origin": header(
            "Origin",
            "The web app's origin; a configured one gets the CORS grant (`FRONTEND_SOURCE`).",
            {"type": "string"},
            "https://dj.wxyc.org",
        ),
        "AccessControlRequestMethod": header(
            "Access-Control-Request-Method", "The method the browser wants to send.", {"type": "string"}, "GET"
        ),
        "AccessControlRequestHeaders": header(
            "Access-Control-Request-Headers",
            "The headers the browser wants to send.",
            {"type": "string"},
            "authorization, content-type, x-request-id",
        ),
    }


def _headers() -> dict[str, Any]:
    # Imported here: backend.routes imports this module (the docs blueprint), so a top-level import would be a cycle.
    from backend.routes.edge import CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS, CORS_MAX_AGE_S, CORS_METHODS

    def header(description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
        return {"description": description, "required": required, "schema": {"type": "string", **schema}}

    return {
        "ETag": header(
            "Weak validator of the body, as Express sends it.", {"pattern": '^W/"[0-9a-f]{16}"$'}, required=True
        ),
        "X-Request-Id": header(
            "The caller's request id, or a new one (32 hex characters).",
            {"pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            required=True,
        ),
        "X-Worker": header("The Sanic worker that answered.", {"minLength": 1}, required=True),
        "WWW-Authenticate": header("The scheme a 401 asks for (RFC 9110).", {"pattern": "^Bearer( |$)"}, required=True),
        "Vary": header("`Origin` when CORS origins are configured and the request carried one.", {}),
        "Access-Control-Allow-Origin": header("The request's origin, when it is a configured one.", {}),
        "Access-Control-Allow-Credentials": header("Credentials allowed (configured origin only).", {"const": "true"}),
        "Access-Control-Expose-Headers": header("Readable by the web app.", {"const": CORS_EXPOSED_HEADERS}),
        "Access-Control-Allow-Methods": header("Preflight grant: the methods.", {"const": CORS_METHODS}),
        "Access-Control-Allow-Headers": header("Preflight grant: the headers.", {"const": CORS_ALLOWED_HEADERS}),
        "Access-Control-Max-Age": header("Preflight grant: seconds to cache it.", {"const": CORS_MAX_AGE_S}),
    }


def _nullable(type_: str, **extra: Any) -> dict[str, Any]:
    return {"type": [type_, "null"], **extra}


def _schemas() -> dict[str, Any]:
    identity_fields = {
        "discogs_artist_id": _nullable("integer"),
        "musicbrainz_artist_id": _nullable("string"),
        "wikidata_qid": _nullable("string"),
        "spotify_artist_id": _nullable("string"),
        "apple_music_artist_id": _nullable("string"),
        "bandcamp_id": _nullable("string"),
    }
    item_fields: dict[str, Any] = {
        "id": _nullable("integer", description="library.id; null for a row not linked to the library."),
        "code_letters": _nullable("string", description="artists.code_letters."),
        "code_artist_number": _nullable("integer", description="genre_artist_crossreference.artist_genre_code."),
        "code_number": _nullable("integer", description="library.code_number."),
        "artist_name": _nullable("string", description="artists.artist_name, else the rotation snapshot."),
        "alphabetical_name": _nullable("string", description="artists.alphabetical_name, else the snapshot."),
        "album_title": _nullable("string", description="library.album_title, else the snapshot."),
        "record_label": _nullable("string", description="library.label, else the snapshot."),
        "label_id": _nullable("integer", description="library.label_id."),
        "genre_name": _nullable("string", description="genres.genre_name."),
        "format_name": _nullable("string", description="format.format_name."),
        "rotation_id": {"type": "integer", "minimum": 1, "description": "rotation.id."},
        "add_date": _nullable("string", format="date-time", description="library.add_date (UTC, milliseconds)."),
        "rotation_add_date": {"type": "string", "format": "date", "description": "rotation.add_date."},
        "rotation_bin": {"enum": ["H", "M", "L", "S"], "description": "rotation.rotation_bin (heavy to light)."},
        "rotation_kill_date": _nullable("string", format="date", description="rotation.kill_date (future or null)."),
        "plays": _nullable("integer", description="library.plays."),
        "legacy_release_id": _nullable("integer", description="library.legacy_release_id."),
        "reconciled_identity": {
            "oneOf": [_ref("ReconciledIdentity"), {"type": "null"}],
            "description": "The artist's external ids; null when all six are null.",
        },
    }
    auth_401 = sorted(str(body["error"]) for body in _auth_bodies(401).values())
    auth_403 = sorted(str(body["error"]) for body in _auth_bodies(403).values() if "error" in body)
    return {
        "Track": {
            "type": "object",
            "required": ["position", "title", "duration", "artists"],
            "additionalProperties": False,
            "properties": {
                "position": {"type": "string"},
                "title": {"type": "string"},
                "duration": _nullable("string"),
                "artists": {"type": "array", "items": {"type": "string"}},
            },
            "examples": [_track_example()],
        },
        "Tracklist": {"type": "array", "items": _ref("Track")},
        "ReconciledIdentity": {
            "type": "object",
            "required": list(identity_fields),
            "additionalProperties": False,
            "properties": identity_fields,
        },
        "RotationListItem": {
            "type": "object",
            "description": "One (album, bin) of the active rotation (station.md §2).",
            "required": list(item_fields),
            "additionalProperties": False,
            "properties": item_fields,
            "examples": _list_examples(),
        },
        "RotationList": {"type": "array", "items": _ref("RotationListItem")},
        "Error": {
            "type": "object",
            "required": ["message"],
            "additionalProperties": False,
            "properties": {"message": {"type": "string", "minLength": 1}},
        },
        "Unauthorized": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {"error": {"enum": auth_401}},
        },
        "Forbidden": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {"error": {"enum": auth_403}},
        },
        "Banned": {
            "type": "object",
            "required": ["message", "reason"],
            "additionalProperties": False,
            "properties": {
                "message": {"const": "Access denied"},
                "reason": {"type": "string", "minLength": 1, "description": f"banReason, or {DEFAULT_BAN_REASON!r}."},
            },
        },
        "Liveness": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": _readiness_schema(),
        "OpenApiDocument": {
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": {"openapi": {"const": OPENAPI_VERSION}},
        },
    }


def _readiness_schema() -> dict[str, Any]:
    diagnostic = {"type": "object", "description": "Diagnostics for operators; its fields may change."}
    return {
        "type": "object",
        "required": ["status", "draining", "services", "schema", "worker", "caches", "limiter", "auth", "warm"],
        "properties": {
            "status": {"enum": ["healthy", "degraded", "unhealthy"]},
            "draining": {"type": "boolean", "description": "The worker is stopping (readiness then answers 503)."},
            "services": {
                "type": "object",
                "required": ["database", "schema", "lml", "auth"],
                "properties": {
                    "database": {"enum": ["ok", "timeout", "unavailable"]},
                    "schema": {"enum": ["ok", "pending", "incompatible", "invalid", "unavailable"]},
                    "lml": {"enum": ["ok", "timeout", "unavailable", "unconfigured"]},
                    "auth": {"enum": ["jwks", "bypass", "unconfigured"]},
                },
            },
            "schema": {"type": "string", "description": "The schema check's line (names the fix when pending)."},
            "worker": {"type": "string"},
            "caches": {**diagnostic, "additionalProperties": {"type": "object"}},
            "limiter": diagnostic,
            "auth": {**diagnostic, "description": "The verified-token cache."},
            "warm": {
                **diagnostic,
                "required": ["walker", "worker", "stored"],
                "properties": {
                    "walker": {"type": ["object", "null"], "description": "The fleet walk's status, null before one."},
                    "worker": {"type": "object", "description": "This worker's load state."},
                    "stored": {"type": ["object", "null"], "description": "Stored answers; null when unreadable."},
                },
            },
        },
    }
