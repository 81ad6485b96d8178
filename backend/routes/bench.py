"""Benchmark-only routes (``BENCH_ROUTES=true``): the framework's floor for the picker comparison."""

from __future__ import annotations

import functools

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

bp = Blueprint("bench", url_prefix="/_bench")


@functools.lru_cache(maxsize=64)
def _tracks_of_size(size: int) -> list[dict[str, object]]:
    """A picker-shaped JSON array of about ``size`` bytes, built once per size."""
    track = {"position": "A1", "title": "Paper Lanterns", "duration": "3:41", "artists": ["The Velvet Orchards"]}
    per_track = len('{"position":"A1","title":"Paper Lanterns","duration":"3:41","artists":["The Velvet Orchards"]},')
    return [dict(track, position=f"A{i + 1}") for i in range(max(1, size // per_track))]


@bp.get("/floor")
async def floor(request: Request) -> HTTPResponse:
    """A JSON body of the requested size from memory: no cache lookups, no database, no LML."""
    try:
        size = min(max(int(request.args.get("bytes", "900")), 1), 100_000)
    except ValueError:
        size = 900
    return json(_tracks_of_size(size))
