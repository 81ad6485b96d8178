"""The app's request class: Sanic's, able to answer a request line whose URL its parser refuses."""

from __future__ import annotations

import re
from typing import Any

from sanic import Request as SanicRequest

# Bytes httptools' URL parser refuses: controls, space and DEL.
_REFUSED = re.compile(rb"[\x00-\x20\x7f]")

# The method Sanic gives the stand-in request it builds to answer a request line it could not parse.
STAND_IN_METHOD = "NONE"


def escape_refused(url_bytes: bytes) -> bytes:
    """``url_bytes`` with every byte the URL parser refuses percent-encoded."""
    return _REFUSED.sub(lambda m: b"%%%02X" % m[0][0], url_bytes)


class Request(SanicRequest):
    """Sanic's request.

    Sanic answers an unparseable URL (``GET /library/rotation/\\x01/tracks``) with a 400 "Bad URL"
    through a stand-in request built from the same URL (``Http.create_empty_request``), whose escaping
    keeps control bytes. Building the stand-in raised again, so the connection was dropped and an ERROR
    traceback was logged per request: a log (and Sentry) flood anyone could send. The stand-in's URL
    is percent-encoded here, so the 400 is answered and nothing is logged.
    """

    def __init__(self, url_bytes: bytes, headers: Any, version: str, method: str, *args: Any, **kwargs: Any) -> None:
        if method == STAND_IN_METHOD:
            url_bytes = escape_refused(url_bytes)
        super().__init__(url_bytes, headers, version, method, *args, **kwargs)
