"""Immutable value types shared by the client, the services and the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RotationTrack:
    """One picker row: the wire shape the DJ web app reads (``RotationTrack`` in dj-site)."""

    position: str
    title: str
    duration: str | None
    artists: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "title": self.title,
            "duration": self.duration,
            "artists": list(self.artists),
        }


Tracklist = tuple[RotationTrack, ...]


def with_artist_fallback(tracks: Tracklist | None, fallback: str | None) -> Tracklist | None:
    """Fill empty per-track artists with ``fallback``; ``None``/empty in means ``None`` out.

    ``None`` (not ``()``) keeps "no tracks carried" distinguishable from an empty release.
    """
    if not tracks:
        return None
    fill = (fallback,) if fallback else ()
    return tuple(t if t.artists else RotationTrack(t.position, t.title, t.duration, fill) for t in tracks)


def tracklist_to_json(tracks: Tracklist) -> list[dict[str, Any]]:
    return [t.to_json() for t in tracks]
