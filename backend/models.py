"""Immutable value types shared by the client, the services and the routes."""

from __future__ import annotations

from typing import Any, NamedTuple


class RotationTrack(NamedTuple):
    """One picker row: the wire shape the DJ web app reads (``RotationTrack`` in dj-site).

    A NamedTuple rather than a frozen dataclass: just as immutable, and several times cheaper to
    build, which matters when a restarted worker loads thousands of tracks before serving.
    """

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
    return tuple(t if t.artists else t._replace(artists=fill) for t in tracks)


def tracklist_to_json(tracks: Tracklist) -> list[dict[str, Any]]:
    return [t.to_json() for t in tracks]
