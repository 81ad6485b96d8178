"""The picker use case: a rotation row's tracklist, resolved then fetched."""

from __future__ import annotations

from backend.models import EMPTY_BODY, TrackBody
from backend.services.release_tracklists import ReleaseTracklistService
from backend.services.rotation_resolver import RotationResolver


class RotationTracksService:
    """Answer ``GET /library/rotation/<id>/tracks``.

    Args:
        resolver: the three-tier resolver.
        releases: the release tracklist fetcher.
    """

    def __init__(self, resolver: RotationResolver, releases: ReleaseTracklistService) -> None:
        self._resolver = resolver
        self._releases = releases

    async def tracks(self, rotation_id: int) -> TrackBody:
        """Return the row's tracklist body; ``[]`` when nothing resolves.

        Raises:
            LmlError: the release fetch failed (tier-3 lookup failures degrade to ``[]`` instead).
        """
        resolution = await self._resolver.resolve(rotation_id)
        source = resolution.source
        if source is None:
            return EMPTY_BODY
        if source.inline is not None:
            return source.inline
        if source.release_id is None:  # defensive: PickerSource is never both None
            return EMPTY_BODY
        fetched = await self._releases.fetch(source.release_id)
        return fetched.tracks or EMPTY_BODY
