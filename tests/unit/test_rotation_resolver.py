"""The three-tier resolver against hand-written fakes of the repository and the LML lookup."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from backend.clients.lml import LookupResponse
from backend.db.rotation import PickerRow
from backend.errors import LimiterShedError, LmlError, LmlTimeoutError, LmlUnavailableError
from backend.models import RotationTrack
from backend.services.caches import ExpiringCache
from backend.services.rotation_resolver import (
    Outcome,
    PickerSource,
    RotationResolver,
    is_various_artists,
)

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)


def make_row(rotation_id: int = 7, **overrides: object) -> PickerRow:
    values: dict[str, object] = {
        "rotation_id": rotation_id,
        "direct_release_id": None,
        "identity_release_id": None,
        "artist_name": "Autechre",
        "album_title": "Confield",
        "lookup_attempted_at": None,
    }
    values.update(overrides)
    return PickerRow(**values)  # type: ignore[arg-type]


def make_response(**overrides: object) -> LookupResponse:
    values: dict[str, object] = {
        "search_type": "direct",
        "result_count": 1,
        "top_release_id": 4080,
        "top_tracklist": None,
        "timeout": False,
        "degraded": False,
    }
    values.update(overrides)
    return LookupResponse(**values)  # type: ignore[arg-type]


@dataclass
class FakeRows:
    rows: dict[int, PickerRow] = field(default_factory=dict)
    stamped: list[int] = field(default_factory=list)
    stamp_error: Exception | None = None
    reads: int = 0

    bulk_reads: int = 0

    async def picker_row(self, rotation_id: int) -> PickerRow | None:
        self.reads += 1
        return self.rows.get(rotation_id)

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]:
        self.bulk_reads += 1
        return {rid: self.rows[rid] for rid in rotation_ids if rid in self.rows}

    async def stamp_lookup_attempted(self, rotation_id: int) -> None:
        if self.stamp_error is not None:
            raise self.stamp_error
        self.stamped.append(rotation_id)


@dataclass
class FakeLookup:
    answers: list[LookupResponse | LmlError] = field(default_factory=list)
    calls: list[tuple[str | None, str, str]] = field(default_factory=list)

    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse:
        self.calls.append((artist, album, priority))
        answer = self.answers.pop(0)
        if isinstance(answer, LmlError):
            raise answer
        return answer


def make_resolver(rows: FakeRows, lookup: FakeLookup, *, lml_configured: bool = True) -> RotationResolver:
    return RotationResolver(
        rows,
        lookup,
        lml_configured=lml_configured,
        cache=ExpiringCache(500, 86_400),
        now=lambda: NOW,
    )


TRACKS = (
    RotationTrack("1", "VI Scose Poise", "8:09", ()),
    RotationTrack("2", "Cfern", None, ("Rob Brown",)),
)


class TestStoredTiers:
    async def test_tier1_direct_id_wins_without_lml(self) -> None:
        """A rotation row's own release id answers with no LML call."""
        rows, lookup = FakeRows({7: make_row(direct_release_id=11, identity_release_id=22)}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.TIER1
        assert result.source == PickerSource(11, None)
        assert lookup.calls == []

    async def test_tier2_identity_bridge_used_when_no_direct_id(self) -> None:
        """The library identity's release id answers when the row has none."""
        rows, lookup = FakeRows({7: make_row(identity_release_id=22)}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert (result.outcome, result.source) == (Outcome.TIER2, PickerSource(22, None))

    async def test_stored_id_wins_over_fresh_stamp(self) -> None:
        """A stored id is read before the negative stamp."""
        row = make_row(direct_release_id=11, lookup_attempted_at=NOW - dt.timedelta(days=1))
        result = await make_resolver(FakeRows({7: row}), FakeLookup()).resolve(7)
        assert result.outcome is Outcome.TIER1

    async def test_unknown_row_is_not_found(self) -> None:
        """A missing row resolves to nothing."""
        result = await make_resolver(FakeRows(), FakeLookup()).resolve(99)
        assert (result.outcome, result.source) == (Outcome.NOT_FOUND, None)


class TestSkips:
    @pytest.mark.parametrize(
        ("artist", "album"),
        [
            pytest.param(None, "Confield", id="artist-null"),
            pytest.param("Autechre", None, id="album-null"),
            pytest.param("  ", "Confield", id="artist-blank"),
        ],
    )
    async def test_no_text_skips_lml(self, artist: str | None, album: str | None) -> None:
        """Without both artist and album there is nothing to look up."""
        rows, lookup = FakeRows({7: make_row(artist_name=artist, album_title=album)}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.NO_TEXT
        assert lookup.calls == []

    async def test_fresh_stamp_skips_lml(self) -> None:
        """A confirmed miss less than 7 days old is not retried."""
        row = make_row(lookup_attempted_at=NOW - dt.timedelta(days=6, hours=23))
        rows, lookup = FakeRows({7: row}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.STAMP_SKIP
        assert lookup.calls == []

    async def test_stale_stamp_falls_through_to_lml(self) -> None:
        """A stamp older than 7 days lets LML be asked again."""
        row = make_row(lookup_attempted_at=NOW - dt.timedelta(days=7, seconds=1))
        rows, lookup = FakeRows({7: row}), FakeLookup([make_response()])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE

    async def test_unconfigured_lml_is_skipped(self) -> None:
        """With LIBRARY_METADATA_URL unset tier 3 is skipped, not failed."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup()
        result = await make_resolver(rows, lookup, lml_configured=False).resolve(7)
        assert result.outcome is Outcome.LML_UNCONFIGURED
        assert lookup.calls == []


class TestTier3:
    async def test_direct_match_with_release_id(self) -> None:
        """A direct match yields its release id and is cached (LML asked once)."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([make_response()])
        resolver = make_resolver(rows, lookup)
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert (first.outcome, first.source) == (Outcome.LML_POSITIVE, PickerSource(4080, None))
        assert (second.outcome, second.source) == (Outcome.CACHE_HIT, PickerSource(4080, None))
        assert lookup.calls == [("Autechre", "Confield", "live")]

    async def test_inline_tracklist_gets_row_artist_fallback(self) -> None:
        """Inline tracks with no per-track artists carry the row's artist."""
        rows = FakeRows({7: make_row()})
        lookup = FakeLookup([make_response(top_tracklist=TRACKS)])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.source is not None and result.source.inline_tracklist == (
            RotationTrack("1", "VI Scose Poise", "8:09", ("Autechre",)),
            RotationTrack("2", "Cfern", None, ("Rob Brown",)),
        )

    async def test_zero_sentinel_with_tracks_is_musicbrainz_rescue(self) -> None:
        """release_id 0 with a tracklist gives inline tracks and no release id."""
        lookup = FakeLookup([make_response(top_release_id=0, top_tracklist=TRACKS)])
        result = await make_resolver(FakeRows({7: make_row()}), lookup).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE
        assert result.source is not None and result.source.release_id is None
        assert result.source.inline_tracklist is not None

    @pytest.mark.parametrize(
        "response",
        [
            pytest.param(make_response(top_release_id=0), id="sentinel-without-tracks"),
            pytest.param(make_response(search_type="fallback"), id="fallback"),
            pytest.param(make_response(search_type="alternative"), id="alternative"),
            pytest.param(make_response(search_type="compilation"), id="compilation"),
            pytest.param(make_response(search_type="song_as_artist"), id="song-as-artist"),
            pytest.param(make_response(search_type=None), id="search-type-absent"),
            pytest.param(make_response(search_type="none", result_count=0, top_release_id=None), id="empty"),
            pytest.param(
                make_response(search_type="direct", result_count=0, top_release_id=None),
                id="empty-but-direct",
            ),
        ],
    )
    async def test_untrusted_or_empty_answers_are_confirmed_misses(self, response: LookupResponse) -> None:
        """Non-direct, empty or id-less answers are cached as negatives and stamped."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([response])
        resolver = make_resolver(rows, lookup)
        result = await resolver.resolve(7)
        again = await resolver.resolve(7)
        assert (result.outcome, result.source) == (Outcome.LML_NEGATIVE, None)
        assert again.outcome is Outcome.CACHE_NEGATIVE
        assert rows.stamped == [7]
        assert len(lookup.calls) == 1

    @pytest.mark.parametrize(
        "response",
        [
            pytest.param(make_response(result_count=0, top_release_id=None, timeout=True), id="timeout"),
            pytest.param(make_response(result_count=0, top_release_id=None, degraded=True), id="degraded"),
            pytest.param(
                make_response(search_type="none", result_count=0, top_release_id=None, timeout=True),
                id="timeout-none",
            ),
        ],
    )
    async def test_timeout_or_degraded_without_match_is_transient(self, response: LookupResponse) -> None:
        """LML running out of time is not a miss: nothing cached, nothing stamped, next open retries."""
        rows = FakeRows({7: make_row()})
        lookup = FakeLookup([response, make_response()])
        resolver = make_resolver(rows, lookup)
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert first.outcome is Outcome.LML_ERROR and first.error
        assert second.outcome is Outcome.LML_POSITIVE
        assert rows.stamped == []

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(LmlTimeoutError(), id="timeout"),
            pytest.param(LmlUnavailableError("LML responded with 503: Service Unavailable"), id="5xx"),
            pytest.param(LimiterShedError("shed_breaker_open"), id="shed"),
        ],
    )
    async def test_lml_failure_is_not_cached(self, error: LmlError) -> None:
        """A failed lookup degrades to nothing and the next open asks again."""
        rows = FakeRows({7: make_row()})
        lookup = FakeLookup([error, make_response()])
        resolver = make_resolver(rows, lookup)
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert (first.outcome, first.source, first.error) == (Outcome.LML_ERROR, None, error.message)
        assert second.outcome is Outcome.LML_POSITIVE
        assert rows.stamped == []

    async def test_stamp_failure_does_not_fail_the_answer(self) -> None:
        """A failed stamp write is logged; the negative still stands."""
        rows = FakeRows({7: make_row()}, stamp_error=OSError("db gone"))
        lookup = FakeLookup([make_response(search_type="none", result_count=0, top_release_id=None)])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.LML_NEGATIVE

    async def test_various_artists_row_is_looked_up_by_album_only(self) -> None:
        """A V/A row sends no artist, but its inline tracks fall back to the row's artist text."""
        tracks = (RotationTrack("1", "Song", None, ()),)
        rows = FakeRows({7: make_row(artist_name="Various Artists", album_title="Nuggets")})
        lookup = FakeLookup([make_response(top_release_id=0, top_tracklist=tracks)])
        result = await make_resolver(rows, lookup).resolve(7)
        assert lookup.calls == [(None, "Nuggets", "live")]
        assert result.source is not None and result.source.inline_tracklist == (
            RotationTrack("1", "Song", None, ("Various Artists",)),
        )

    async def test_priority_is_passed_to_the_lookup(self) -> None:
        """The warmer's background priority reaches the limiter."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([make_response()])
        await make_resolver(rows, lookup).resolve(7, priority="warm")
        assert lookup.calls[0][2] == "warm"

    async def test_invalidate_forgets_both_caches(self) -> None:
        """After invalidation the next open asks LML again."""
        rows = FakeRows({7: make_row()})
        lookup = FakeLookup([make_response(), make_response(top_release_id=5)])
        resolver = make_resolver(rows, lookup)
        await resolver.resolve(7)
        resolver.invalidate(7)
        result = await resolver.resolve(7)
        assert result.source == PickerSource(5, None)


class TestRowCache:
    @pytest.mark.parametrize(
        ("row", "outcome"),
        [
            pytest.param(make_row(direct_release_id=11), Outcome.TIER1, id="tier1"),
            pytest.param(make_row(identity_release_id=22), Outcome.TIER2, id="tier2"),
            pytest.param(make_row(artist_name=None), Outcome.NO_TEXT, id="no-text"),
            pytest.param(make_row(lookup_attempted_at=NOW - dt.timedelta(days=1)), Outcome.STAMP_SKIP, id="stamp"),
        ],
    )
    async def test_second_open_touches_no_database(self, row: PickerRow, outcome: Outcome) -> None:
        """Every cacheable answer is served from the row cache the second time: no DB read."""
        rows = FakeRows({7: row})
        resolver = make_resolver(rows, FakeLookup())
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert first.outcome is outcome
        assert second.outcome in (Outcome.CACHE_HIT, Outcome.CACHE_NEGATIVE)
        assert second.source == first.source
        assert rows.reads == 1

    async def test_unconfigured_lml_is_not_cached(self) -> None:
        """An LML-unconfigured answer is re-read (configuration may change with a restart only, but it is cheap)."""
        rows = FakeRows({7: make_row()})
        resolver = make_resolver(rows, FakeLookup(), lml_configured=False)
        await resolver.resolve(7)
        await resolver.resolve(7)
        assert rows.reads == 2

    async def test_stamp_skip_is_cached_only_until_the_stamp_lapses(self) -> None:
        """A stamp one hour from lapsing is cached for that hour, not 24 h."""
        now = [0.0]
        rows = FakeRows({7: make_row(lookup_attempted_at=NOW - dt.timedelta(days=7) + dt.timedelta(hours=1))})
        resolver = RotationResolver(
            rows,
            FakeLookup([make_response()]),
            lml_configured=True,
            cache=ExpiringCache(500, 86_400, clock=lambda: now[0]),
            now=lambda: NOW,
        )
        assert (await resolver.resolve(7)).outcome is Outcome.STAMP_SKIP
        expiry = resolver.cache.get_with_expiry(7)
        assert expiry is not None and expiry[0] == pytest.approx(3600.0)


class TestPrefetch:
    async def test_prefetched_rows_are_used_once_without_a_query(self) -> None:
        """The walk's bulk read replaces each row's own query (missing rows included)."""
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows, FakeLookup())
        await resolver.prefetch([7, 8])
        assert (await resolver.resolve(7)).outcome is Outcome.TIER1
        assert (await resolver.resolve(8)).outcome is Outcome.NOT_FOUND
        assert (rows.bulk_reads, rows.reads) == (1, 0)

    async def test_invalidation_drops_prefetched_rows(self) -> None:
        """A row that changed after the bulk read is read again."""
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows, FakeLookup())
        await resolver.prefetch([7])
        rows.rows[7] = make_row(direct_release_id=12)
        resolver.invalidate(7)
        assert (await resolver.resolve(7)).source == PickerSource(12, None)
        assert rows.reads == 1

    async def test_old_prefetched_rows_are_ignored(self) -> None:
        """Prefetched data older than 30 s (a long live-DJ pause) is not trusted."""
        now = [0.0]
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = RotationResolver(
            rows, FakeLookup(), lml_configured=True, cache=ExpiringCache(10, 100, clock=lambda: now[0])
        )
        await resolver.prefetch([7])
        now[0] = 31.0
        await resolver.resolve(7)
        assert rows.reads == 1


class TestVariousArtists:
    @pytest.mark.parametrize(
        "name",
        [
            "Various Artists",
            "various artists",
            "VARIOUS ARTISTS",
            "Various Artist",
            "various",
            "V/A",
            "V.A.",
            "v a",
            "Var Artists",
            "Var. Artists",
            "  Various Artists  ",
        ],
    )
    def test_matches(self, name: str) -> None:
        """Each spelling of Various Artists is recognised."""
        assert is_various_artists(name)

    @pytest.mark.parametrize("name", ["Variety Pack", "Variations", "Autechre", "", None, "Vast Aire"])
    def test_does_not_match(self, name: str | None) -> None:
        """Real artist names are not mistaken for Various Artists."""
        assert not is_various_artists(name)
