"""Domain errors, mapped to HTTP in one place (``backend.routes.errors``).

Hierarchy::

    PickerError                      base; status_code + message
    ├── BadRequestError              400: the caller sent something invalid
    └── LmlError                     LML could not answer: never a confirmed miss
        ├── LmlUnconfiguredError     503: LIBRARY_METADATA_URL is unset
        ├── LmlTimeoutError          504: the per-call timeout fired
        ├── LmlUnavailableError      502: network failure or LML 5xx
        ├── LmlAuthError             502: LML rejected our credentials (401/403)
        ├── LmlBadResponseError      502: LML answered 200 with a body we cannot use
        ├── LmlStatusError           4xx: any other LML 4xx, passed through
        │   └── LmlNotFoundError     404: the release does not exist (cached as a negative)
        └── LimiterShedError         503: our own limiter refused the call (queue wait, breaker open)

Services raise these; they carry no web-framework types so services stay framework-free.
"""

from __future__ import annotations


class PickerError(Exception):
    """Base class: every domain error knows its HTTP status and a client-safe message."""

    status_code: int = 500

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadRequestError(PickerError):
    """The request itself is invalid."""

    status_code = 400


class LmlError(PickerError):
    """LML could not give an answer. Never cache this as 'no match'."""

    status_code = 502


class LmlUnconfiguredError(LmlError):
    """LIBRARY_METADATA_URL is not set."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__("LIBRARY_METADATA_URL is not configured")


class LmlTimeoutError(LmlError):
    """The per-call timeout fired."""

    status_code = 504

    def __init__(self) -> None:
        super().__init__("LML request timed out")


class LmlUnavailableError(LmlError):
    """Network failure or an LML 5xx."""

    status_code = 502


class LmlAuthError(LmlError):
    """LML answered 401/403: our credentials are wrong, which is the backend's fault (502)."""

    status_code = 502


class LmlBadResponseError(LmlError):
    """LML answered with a body that is not the documented shape."""

    status_code = 502


class LmlStatusError(LmlError):
    """Any other LML 4xx, passed through with LML's status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message, status_code=status_code)


class LmlNotFoundError(LmlStatusError):
    """LML answered 404 for a release."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


class LimiterShedError(LmlError):
    """Our limiter refused the call without touching the network."""

    status_code = 503

    def __init__(self, reason: str) -> None:
        super().__init__(f"LML limiter shed: {reason}")
        self.reason = reason
