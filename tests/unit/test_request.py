"""The app's request class answers a URL that Sanic's own stand-in request cannot hold."""

from __future__ import annotations

import pytest
from sanic import Request as SanicRequest
from sanic import Sanic
from sanic.compat import Header
from sanic.exceptions import BadURL

from backend.request import STAND_IN_METHOD, Request, escape_refused

BAD = b"/library/rotation/\x01\x7f /tracks?x=\x00"


@pytest.fixture(scope="module")
def app() -> Sanic:  # type: ignore[type-arg]
    return Sanic("request_test")


def build(cls: type[SanicRequest], url: bytes, method: str, app: Sanic) -> SanicRequest:  # type: ignore[type-arg]
    return cls(url_bytes=url, headers=Header({}), version="1.1", method=method, transport=None, app=app)  # type: ignore[arg-type]


def test_sanics_stand_in_still_cannot_hold_a_control_byte(app: Sanic) -> None:  # type: ignore[type-arg]
    # The reason for backend.request; when this fails, Sanic has fixed it and the subclass can go.
    with pytest.raises(BadURL):
        build(SanicRequest, BAD, STAND_IN_METHOD, app)


def test_the_stand_in_holds_the_url_percent_encoded(app: Sanic) -> None:  # type: ignore[type-arg]
    request = build(Request, BAD, STAND_IN_METHOD, app)
    assert request.raw_url == b"/library/rotation/%01%7F%20/tracks?x=%00"


def test_a_real_request_line_with_a_control_byte_is_still_a_bad_url(app: Sanic) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadURL):
        build(Request, BAD, "GET", app)


@pytest.mark.parametrize("url", [b"/library/rotation/12/tracks", b"/health/ready?a=%01&b=\xc3\xa9"])
def test_parseable_urls_are_untouched(url: bytes) -> None:
    assert escape_refused(url) == url
