"""Auth failures, each carrying the exact status and body the station's upstream API answers with.

Hierarchy::

    AuthError                401/403: the request is refused; ``body`` is upstream's JSON, ``reason`` a log code
    AuthUnavailableError     503: the JWKS could not be fetched and no cached key fits the token

Neither carries web-framework types; the route maps them to responses.
"""

from __future__ import annotations

from typing import Literal

from backend.errors import PickerError

Reason = Literal[
    "missing_header",
    "missing_token",
    "invalid_token",
    "missing_user_id",
    "banned",
    "missing_role",
    "invalid_role",
    "insufficient_permissions",
]

# reason -> (status, body); the banned body is built per token (it carries banReason).
_REJECTIONS: dict[Reason, tuple[int, dict[str, str]]] = {
    "missing_header": (401, {"error": "Unauthorized: Missing Authorization header."}),
    "missing_token": (401, {"error": "Unauthorized: Missing token in Authorization header."}),
    "invalid_token": (401, {"error": "Unauthorized: Invalid or expired token."}),
    "missing_user_id": (403, {"error": "Forbidden: Missing user ID in token."}),
    "banned": (403, {"message": "Access denied"}),
    "missing_role": (403, {"error": "Forbidden: Missing role in token."}),
    "invalid_role": (403, {"error": "Forbidden: Invalid role."}),
    "insufficient_permissions": (403, {"error": "Forbidden: insufficient permissions"}),
}

DEFAULT_BAN_REASON = "Account suspended"


class AuthError(Exception):
    """The request is not authenticated (401) or not allowed (403).

    Args:
        reason: which check failed; also the exception's text, so logs never carry the token.
        ban_reason: the token's ``banReason`` for ``banned`` (default "Account suspended").

    Attributes:
        reason: the check that failed, a stable code for logs and tests.
        status_code: 401 or 403.
        body: the JSON body upstream answers with (a fresh dict per access).
    """

    def __init__(self, reason: Reason, *, ban_reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason: Reason = reason
        self.status_code, self._body = _REJECTIONS[reason]
        self._ban_reason = ban_reason or DEFAULT_BAN_REASON

    @property
    def body(self) -> dict[str, object]:
        body: dict[str, object] = dict(self._body)
        if self.reason == "banned":
            body["reason"] = self._ban_reason
        return body


class AuthUnavailableError(PickerError):
    """The auth service's JWKS could not be fetched and no cached key fits: never "allowed", never a 500.

    A ``PickerError`` (503), so the existing error handler answers ``{"message": "auth service unavailable"}``.
    """

    status_code = 503

    def __init__(self, detail: str) -> None:
        super().__init__("auth service unavailable")
        self.detail = detail
