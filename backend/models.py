"""Immutable value types shared by the client, the services and the routes."""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple


class RotationTrack(NamedTuple):
    """One picker row: the wire shape the DJ web app reads (``RotationTrack`` in dj-site)."""

    position: str
    title: str
    duration: str | None
    artists: tuple[str, ...]


Tracklist = tuple[RotationTrack, ...]


def with_artist_fallback(tracks: Tracklist | None, fallback: str | None) -> Tracklist | None:
    """Fill empty per-track artists with ``fallback``; ``None``/empty in means ``None`` out.

    ``None`` (not ``()``) keeps "no tracks carried" distinguishable from an empty release.
    """
    if not tracks:
        return None
    fill = (fallback,) if fallback else ()
    return tuple(t if t.artists else t._replace(artists=fill) for t in tracks)


def weak_etag(body: bytes) -> str:
    """A weak validator for ``body`` (what Express sends by default, so the web app handles 304s)."""
    return f'W/"{hashlib.blake2b(body, digest_size=8).hexdigest()}"'


class TrackBody(NamedTuple):
    """A tracklist as served: the exact JSON body and its weak ETag, built once and shared.

    Warm answers are kept in this form, so a warm open serialises nothing, and this is also the
    form persisted in PostgreSQL (``tracks`` columns hold ``json`` as text).
    """

    json: bytes
    etag: str

    @classmethod
    def of_json(cls, text: str) -> TrackBody:
        body = text.encode()
        return cls(body, weak_etag(body))

    @property
    def text(self) -> str:
        return self.json.decode()


def tracks_body(tracks: Tracklist) -> TrackBody:
    """Serialise ``tracks`` to the wire shape ``[{position, title, duration, artists}]``."""
    items = [
        {"position": t.position, "title": t.title, "duration": t.duration, "artists": list(t.artists)} for t in tracks
    ]
    return TrackBody.of_json(json.dumps(items, ensure_ascii=False, separators=(",", ":")))


EMPTY_BODY = TrackBody.of_json("[]")
