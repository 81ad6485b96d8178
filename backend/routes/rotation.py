"""``/library/rotation``: the rotation list and a row's picker tracklist (station JWT with ``catalog:read``)."""

from __future__ import annotations

import json
import re

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from backend.errors import BadRequestError
from backend.models import weak_etag
from backend.routes.edge import add_get, json_with_etag, protected

bp = Blueprint("rotation", url_prefix="/library/rotation")

_INT4_MAX = 2_147_483_647
_DIGITS = re.compile(r"[0-9]+")


def parse_rotation_id(raw: str) -> int:
    """Strictly parse a path id: digits only, 1..2147483647 (upstream accepted ``12abc``).

    Raises:
        BadRequestError: anything else.
    """
    if not _DIGITS.fullmatch(raw) or len(raw) > 10 or not 1 <= int(raw) <= _INT4_MAX:
        raise BadRequestError("rotation_id must be an integer between 1 and 2147483647")
    return int(raw)


@protected()
async def list_rotation(request: Request) -> HTTPResponse:
    """One row per (album, bin), as upstream's ``GET /library/rotation`` answers (station.md §2)."""
    rows = await request.app.ctx.services.rows.list_active()
    body = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()
    return json_with_etag(request, body, weak_etag(body))


@protected()
async def rotation_tracks(request: Request, rotation_id: str) -> HTTPResponse:
    """The picker tracklist: a bare array of ``{position, title, duration, artists}``."""
    tracks = await request.app.ctx.services.picker.tracks(parse_rotation_id(rotation_id))
    return json_with_etag(request, tracks.json, tracks.etag)


add_get(bp, "/", list_rotation)
add_get(bp, "/<rotation_id:str>/tracks", rotation_tracks)
