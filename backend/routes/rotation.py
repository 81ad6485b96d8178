"""``/library/rotation``: the active rotation list and a row's picker tracklist."""

from __future__ import annotations

import re

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from backend.errors import BadRequestError
from backend.models import tracklist_to_json

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


@bp.get("/")
async def list_rotation(request: Request) -> HTTPResponse:
    """Active rotation rows; ``rotation_id`` is the row, ``id`` the linked library album or null."""
    return json(await request.app.ctx.rows.list_active())


@bp.get("/<rotation_id:str>/tracks")
async def rotation_tracks(request: Request, rotation_id: str) -> HTTPResponse:
    """The picker tracklist: a bare array of ``{position, title, duration, artists}``."""
    tracks = await request.app.ctx.picker.tracks(parse_rotation_id(rotation_id))
    return json(tracklist_to_json(tracks))
