"""The three-tier resolver against hand-written fakes of the rotation rows, the answer store and the LML lookup."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from backend.clients.lml import LookupResponse
from backend.db.rotation import PickerRow, StoredRow
from backend.errors import LimiterShedError, LmlError, LmlTimeoutError, LmlUnavailableError
from backend.models import RotationTrack, TrackBody, tracks_body, weak_etag
from backend.services.caches import Caches, ExpiringCache
from backend.services.rotation_resolver import (
    NOT_FOUND_TTL_S,
    Outcome,
    PickerSource,
    RotationResolver,
    is_various_artists,
)

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
TTL_S = 86_400.0
INPUTS = "fingerprint-v1"
LOGGER = "backend.services.rotation_resolver"

TRACKS = (
    RotationTrack("1", "VI Scose Poise", "8:09", ()),
    RotationTrack("2", "Cfern", None, ("Rob Brown",)),
)


def make_row(rotation_id: int = 7, **overrides: Any) -> PickerRow:
    values: dict[str, Any] = {
        "rotation_id": rotation_id,
        "direct_release_id": None,
        "identity_release_id": None,
        "artist_name": "Autechre",
        "album_title": "Confield",
        "lookup_attempted_at": None,
        "inputs": INPUTS,
        "active": True,
        "stamp_trusted": True,
        "stored": None,
    }
    values.update(overrides)
    return PickerRow(**values)


def make_stored(rotation_id: int = 7, **overrides: Any) -> StoredRow:
    values: dict[str, Any] = {
        "rotation_id": rotation_id,
        "inputs": INPUTS,
        "outcome": "lml_positive",
        "release_id": 4080,
        "tracks": None,
        "ttl_s": 3600.0,
        "seq": 41,
    }
    values.update(overrides)
    return StoredRow(**values)


def make_response(**overrides: Any) -> LookupResponse:
    values: dict[str, Any] = {
        "search_type": "direct",
        "result_count": 1,
        "top_release_id": 4080,
        "top_tracklist": None,
        "timeout": False,
        "degraded": False,
    }
    values.update(overrides)
    return LookupResponse(**values)


NO_MATCH = make_response(search_type="none", result_count=0, top_release_id=None)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FixedRandom(random.Random):
    """A random source whose ``random()`` always returns one value (for the TTL jitter)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@dataclass
class FakeRows:
    """The rotation repository: rows by id, plus the stamp writes it received."""

    rows: dict[int, PickerRow] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    stamp_error: Exception | None = None
    read_error: Exception | None = None
    reads: int = 0
    bulk_reads: int = 0
    stamped: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)

    async def picker_row(self, rotation_id: int) -> PickerRow | None:
        self.reads += 1
        if self.read_error is not None:
            raise self.read_error
        return self.rows.get(rotation_id)

    async def picker_rows(self, rotation_ids: list[int]) -> dict[int, PickerRow]:
        self.bulk_reads += 1
        return {rid: self.rows[rid] for rid in rotation_ids if rid in self.rows}

    async def stamp_lookup_attempted(self, rotation_id: int) -> None:
        if self.stamp_error is not None:
            raise self.stamp_error
        self.events.append("stamp")
        self.stamped.append(rotation_id)

    async def clear_lookup_stamp(self, rotation_id: int) -> None:
        if self.stamp_error is not None:
            raise self.stamp_error
        self.events.append("clear_stamp")
        self.cleared.append(rotation_id)


@dataclass
class FakeAnswers:
    """The answer store: records each save; answers with the next sequence number, or ``result`` when set."""

    events: list[str] = field(default_factory=list)
    saves: list[dict[str, Any]] = field(default_factory=list)
    results: list[int | None | Exception] = field(default_factory=list)

    async def save_row(
        self,
        rotation_id: int,
        *,
        inputs: str,
        outcome: str,
        release_id: int | None,
        tracks: str | None,
        ttl_s: float,
    ) -> int | None:
        self.events.append("save_row")
        self.saves.append(
            {
                "rotation_id": rotation_id,
                "inputs": inputs,
                "outcome": outcome,
                "release_id": release_id,
                "tracks": tracks,
                "ttl_s": ttl_s,
            }
        )
        result = self.results.pop(0) if self.results else len(self.saves)
        if isinstance(result, Exception):
            raise result
        return result


@dataclass
class FakeLookup:
    """The LML lookup coordinator: answers (or errors) in order, and the calls it received."""

    answers: list[LookupResponse | LmlError] = field(default_factory=list)
    calls: list[tuple[str | None, str, str]] = field(default_factory=list)

    async def lookup(self, artist: str | None, album: str, *, priority: str = "live") -> LookupResponse:
        self.calls.append((artist, album, priority))
        answer = self.answers.pop(0)
        if isinstance(answer, LmlError):
            raise answer
        return answer


def make_caches(clock: FakeClock | None = None, *, rotation_max: int = 500, cold_max: int = 1000) -> Caches:
    clock = clock or FakeClock()
    return Caches(
        rotation=ExpiringCache(rotation_max, TTL_S, clock=clock),
        cold=ExpiringCache(cold_max, TTL_S, clock=clock),
        release_positive=ExpiringCache(500, TTL_S, clock=clock),
        release_negative=ExpiringCache(500, 600, clock=clock),
    )


def make_resolver(
    rows: FakeRows,
    lookup: FakeLookup | None = None,
    answers: FakeAnswers | None = None,
    *,
    lml_configured: bool = True,
    caches: Caches | None = None,
    rng: random.Random | None = None,
) -> RotationResolver:
    return RotationResolver(
        rows,
        lookup or FakeLookup(),
        answers or FakeAnswers(),
        lml_configured=lml_configured,
        caches=caches or make_caches(),
        now=lambda: NOW,
        rng=rng or FixedRandom(0.0),
    )


def parsed(body: TrackBody | None) -> list[dict[str, Any]]:
    assert body is not None
    value = json.loads(body.json)
    assert isinstance(value, list)
    return value


class TestStoredTiers:
    async def test_tier1_direct_id_wins_without_lml(self) -> None:
        """A rotation row's own release id answers with no LML call."""
        rows, lookup = FakeRows({7: make_row(direct_release_id=11, identity_release_id=22)}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert (result.outcome, result.source) == (Outcome.TIER1, PickerSource(11, None))
        assert lookup.calls == []

    async def test_tier2_identity_bridge_used_when_no_direct_id(self) -> None:
        """The library identity's release id answers when the row has none."""
        rows, lookup = FakeRows({7: make_row(identity_release_id=22)}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert (result.outcome, result.source) == (Outcome.TIER2, PickerSource(22, None))
        assert lookup.calls == []

    async def test_identity_without_a_positive_id_falls_through_to_lml(self) -> None:
        """An identity release id of 0 is not a release: LML is asked."""
        rows, lookup = FakeRows({7: make_row(identity_release_id=0)}), FakeLookup([make_response()])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE

    async def test_stored_id_wins_over_fresh_stamp(self) -> None:
        """A stored id is read before the negative stamp."""
        row = make_row(direct_release_id=11, lookup_attempted_at=NOW - dt.timedelta(days=1))
        result = await make_resolver(FakeRows({7: row})).resolve(7)
        assert result.outcome is Outcome.TIER1

    async def test_unknown_row_is_not_found(self) -> None:
        """A missing row resolves to nothing."""
        result = await make_resolver(FakeRows()).resolve(99)
        assert (result.outcome, result.source) == (Outcome.NOT_FOUND, None)

    async def test_outcomes_are_counted(self) -> None:
        """Every resolution is counted under its outcome, cached ones included."""
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows)
        for rid in (7, 7, 99, 99):
            await resolver.resolve(rid)
        assert dict(resolver.outcomes) == {"tier1": 1, "cache_hit": 1, "not_found": 1, "cache_negative": 1}

    async def test_database_errors_reading_the_row_propagate(self) -> None:
        """A failed row read is not turned into an answer."""
        rows = FakeRows({7: make_row()}, read_error=OSError("connection refused"))
        with pytest.raises(OSError, match="refused"):
            await make_resolver(rows).resolve(7)

    async def test_resolution_carries_the_inputs_it_was_computed_from(self) -> None:
        """A computed resolution names the row inputs; a cached one does not."""
        resolver = make_resolver(FakeRows({7: make_row(direct_release_id=11)}))
        assert (await resolver.resolve(7)).inputs == INPUTS
        assert (await resolver.resolve(7)).inputs is None


class TestSkips:
    @pytest.mark.parametrize(
        ("artist", "album"),
        [
            pytest.param(None, "Confield", id="artist-null"),
            pytest.param("Autechre", None, id="album-null"),
            pytest.param("  ", "Confield", id="artist-blank"),
            pytest.param("Autechre", "", id="album-empty"),
        ],
    )
    async def test_no_text_skips_lml(self, artist: str | None, album: str | None) -> None:
        """Without both artist and album there is nothing to look up."""
        rows, lookup = FakeRows({7: make_row(artist_name=artist, album_title=album)}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.NO_TEXT
        assert lookup.calls == []

    async def test_fresh_stamp_skips_lml(self) -> None:
        """A trusted confirmed miss less than 7 days old is not retried."""
        row = make_row(lookup_attempted_at=NOW - dt.timedelta(days=6, hours=23))
        rows, lookup = FakeRows({7: row}), FakeLookup()
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.STAMP_SKIP
        assert lookup.calls == []

    async def test_untrusted_stamp_does_not_count(self) -> None:
        """A fresh stamp written for the row's earlier inputs does not stop LML from being asked."""
        row = make_row(lookup_attempted_at=NOW - dt.timedelta(days=1), stamp_trusted=False)
        rows, lookup = FakeRows({7: row}), FakeLookup([make_response()])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE
        assert len(lookup.calls) == 1

    async def test_stale_stamp_falls_through_to_lml(self) -> None:
        """A stamp older than 7 days lets LML be asked again."""
        row = make_row(lookup_attempted_at=NOW - dt.timedelta(days=7, seconds=1))
        rows, lookup = FakeRows({7: row}), FakeLookup([make_response()])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE

    async def test_unconfigured_lml_is_skipped_and_not_kept(self) -> None:
        """With LIBRARY_METADATA_URL unset tier 3 is skipped, not failed, and the row is read again next time."""
        rows, lookup, answers = FakeRows({7: make_row()}), FakeLookup(), FakeAnswers()
        resolver = make_resolver(rows, lookup, answers, lml_configured=False)
        assert (await resolver.resolve(7)).outcome is Outcome.LML_UNCONFIGURED
        assert (await resolver.resolve(7)).outcome is Outcome.LML_UNCONFIGURED
        assert (rows.reads, lookup.calls, answers.saves) == (2, [], [])

    async def test_stamp_skip_is_kept_only_until_the_stamp_lapses(self) -> None:
        """A stamp one hour from lapsing is stored and cached for that hour, not the full TTL."""
        clock = FakeClock()
        row = make_row(lookup_attempted_at=NOW - dt.timedelta(days=7) + dt.timedelta(hours=1))
        rows, answers = FakeRows({7: row}), FakeAnswers()
        resolver = make_resolver(rows, FakeLookup([make_response()]), answers, caches=make_caches(clock))
        assert (await resolver.resolve(7)).outcome is Outcome.STAMP_SKIP
        assert answers.saves[0]["ttl_s"] == pytest.approx(3600.0)
        clock.now = 3599.0
        assert (await resolver.resolve(7)).outcome is Outcome.CACHE_NEGATIVE
        clock.now = 3601.0
        rows.rows[7] = make_row(lookup_attempted_at=NOW - dt.timedelta(days=8))
        assert (await resolver.resolve(7)).outcome is Outcome.LML_POSITIVE


class TestTier3:
    async def test_direct_match_with_release_id_is_kept(self) -> None:
        """A direct match yields its release id and is cached: LML is asked once."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([make_response()])
        resolver = make_resolver(rows, lookup)
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert (first.outcome, first.source) == (Outcome.LML_POSITIVE, PickerSource(4080, None))
        assert (second.outcome, second.source) == (Outcome.CACHE_HIT, PickerSource(4080, None))
        assert lookup.calls == [("Autechre", "Confield", "live")]
        assert rows.reads == 1

    async def test_inline_tracklist_is_served_json_with_the_row_artist_as_fallback(self) -> None:
        """Inline tracks become the served JSON body; tracks without artists carry the row's artist."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([make_response(top_tracklist=TRACKS)])
        result = await make_resolver(rows, lookup).resolve(7)
        assert result.source is not None and result.source.release_id == 4080
        inline = result.source.inline
        assert parsed(inline) == [
            {"position": "1", "title": "VI Scose Poise", "duration": "8:09", "artists": ["Autechre"]},
            {"position": "2", "title": "Cfern", "duration": None, "artists": ["Rob Brown"]},
        ]
        assert inline is not None and inline.etag == weak_etag(inline.json)

    async def test_zero_sentinel_with_tracks_is_musicbrainz_rescue(self) -> None:
        """release_id 0 with a tracklist gives inline tracks and no release id."""
        lookup = FakeLookup([make_response(top_release_id=0, top_tracklist=TRACKS)])
        result = await make_resolver(FakeRows({7: make_row()}), lookup).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE
        assert result.source is not None and result.source.release_id is None
        assert len(parsed(result.source.inline)) == 2

    @pytest.mark.parametrize(
        "response",
        [
            pytest.param(make_response(top_release_id=0), id="sentinel-without-tracks"),
            pytest.param(make_response(search_type="fallback"), id="fallback"),
            pytest.param(make_response(search_type="alternative"), id="alternative"),
            pytest.param(make_response(search_type="compilation"), id="compilation"),
            pytest.param(make_response(search_type="song_as_artist"), id="song-as-artist"),
            pytest.param(make_response(search_type=None), id="search-type-absent"),
            pytest.param(NO_MATCH, id="empty"),
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
        """LML running out of time is not a miss: nothing stored, nothing stamped, the next open retries."""
        rows, answers = FakeRows({7: make_row()}), FakeAnswers()
        resolver = make_resolver(rows, FakeLookup([response, make_response()]), answers)
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert first.outcome is Outcome.LML_ERROR and first.error
        assert second.outcome is Outcome.LML_POSITIVE
        assert rows.stamped == []
        assert [save["outcome"] for save in answers.saves] == ["lml_positive"]

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(LmlTimeoutError(), id="timeout"),
            pytest.param(LmlUnavailableError("LML responded with 503: Service Unavailable"), id="5xx"),
            pytest.param(LimiterShedError("shed_breaker_open"), id="shed"),
        ],
    )
    async def test_lml_failure_is_not_kept(self, error: LmlError) -> None:
        """A failed lookup degrades to nothing; nothing is stored or stamped and the next open asks again."""
        rows, answers = FakeRows({7: make_row()}), FakeAnswers()
        resolver = make_resolver(rows, FakeLookup([error, make_response()]), answers)
        first = await resolver.resolve(7)
        second = await resolver.resolve(7)
        assert (first.outcome, first.source, first.error) == (Outcome.LML_ERROR, None, error.message)
        assert second.outcome is Outcome.LML_POSITIVE
        assert rows.stamped == []
        assert len(answers.saves) == 1

    async def test_various_artists_row_is_looked_up_by_album_only(self) -> None:
        """A V/A row sends no artist, but its inline tracks fall back to the row's artist text."""
        tracks = (RotationTrack("1", "Song", None, ()),)
        rows = FakeRows({7: make_row(artist_name="Various Artists", album_title="Nuggets")})
        lookup = FakeLookup([make_response(top_release_id=0, top_tracklist=tracks)])
        result = await make_resolver(rows, lookup).resolve(7)
        assert lookup.calls == [(None, "Nuggets", "live")]
        assert result.source is not None
        assert parsed(result.source.inline) == [
            {"position": "1", "title": "Song", "duration": None, "artists": ["Various Artists"]}
        ]

    async def test_priority_is_passed_to_the_lookup(self) -> None:
        """The walk's background priority reaches the limiter."""
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([make_response()])
        await make_resolver(rows, lookup).resolve(7, priority="warm")
        assert lookup.calls[0][2] == "warm"


class TestStamps:
    async def test_negative_is_stamped_after_the_answer_is_stored(self) -> None:
        """A confirmed miss is written to the answer store first, then the row is stamped."""
        events: list[str] = []
        rows, answers = FakeRows({7: make_row()}, events=events), FakeAnswers(events=events)
        await make_resolver(rows, FakeLookup([NO_MATCH]), answers).resolve(7)
        assert events == ["save_row", "stamp"]

    @pytest.mark.parametrize(
        "row",
        [
            pytest.param(make_row(lookup_attempted_at=NOW - dt.timedelta(days=30)), id="stale-stamp"),
            pytest.param(
                make_row(lookup_attempted_at=NOW - dt.timedelta(days=1), stamp_trusted=False), id="untrusted-stamp"
            ),
        ],
    )
    async def test_positive_clears_a_previous_stamp(self, row: PickerRow) -> None:
        """When LML now finds the row, the stamp of an earlier miss is cleared after the answer is stored."""
        events: list[str] = []
        rows, answers = FakeRows({7: row}, events=events), FakeAnswers(events=events)
        result = await make_resolver(rows, FakeLookup([make_response()]), answers).resolve(7)
        assert result.outcome is Outcome.LML_POSITIVE
        assert rows.cleared == [7]
        assert events == ["save_row", "clear_stamp"]

    async def test_positive_without_a_stamp_writes_no_stamp(self) -> None:
        """A row that was never stamped is neither stamped nor cleared on a match."""
        rows = FakeRows({7: make_row()})
        await make_resolver(rows, FakeLookup([make_response()])).resolve(7)
        assert (rows.stamped, rows.cleared) == ([], [])

    async def test_discarded_answer_is_not_stamped(self) -> None:
        """A miss whose row changed while LML was asked leaves no stamp behind."""
        rows, answers = FakeRows({7: make_row()}), FakeAnswers(results=[None])
        await make_resolver(rows, FakeLookup([NO_MATCH]), answers).resolve(7)
        assert rows.stamped == []

    async def test_stamp_failure_does_not_fail_the_answer(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failed stamp write is logged; the negative still stands and stays cached."""
        rows = FakeRows({7: make_row()}, stamp_error=OSError("db gone"))
        resolver = make_resolver(rows, FakeLookup([NO_MATCH]))
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert (await resolver.resolve(7)).outcome is Outcome.LML_NEGATIVE
        assert "stamp not written rotation_id=7" in caplog.text
        assert (await resolver.resolve(7)).outcome is Outcome.CACHE_NEGATIVE


class TestPersistedAnswers:
    async def test_computed_answer_is_saved_with_its_inputs(self) -> None:
        """An answer is stored with the inputs it was computed from, its outcome, ids, tracks and lifetime."""
        answers = FakeAnswers()
        rows = FakeRows({7: make_row()})
        lookup = FakeLookup([make_response(top_tracklist=TRACKS)])
        result = await make_resolver(rows, lookup, answers).resolve(7)
        assert result.source is not None and result.source.inline is not None
        assert answers.saves == [
            {
                "rotation_id": 7,
                "inputs": INPUTS,
                "outcome": "lml_positive",
                "release_id": 4080,
                "tracks": result.source.inline.text,
                "ttl_s": TTL_S,
            }
        ]

    async def test_answer_discarded_by_the_store_is_not_cached(self) -> None:
        """An answer the store discards (the row changed while LML was asked) is not cached; the next open asks."""
        rows, answers = FakeRows({7: make_row()}), FakeAnswers(results=[None])
        lookup = FakeLookup([make_response(), make_response(top_release_id=5)])
        resolver = make_resolver(rows, lookup, answers)
        assert (await resolver.resolve(7)).outcome is Outcome.LML_POSITIVE
        second = await resolver.resolve(7)
        assert (second.outcome, second.source) == (Outcome.LML_POSITIVE, PickerSource(5, None))
        assert len(lookup.calls) == 2

    async def test_store_error_means_not_cached(self, caplog: pytest.LogCaptureFixture) -> None:
        """A database error while saving is logged; the answer is served but not cached, so the next open asks again."""
        rows = FakeRows({7: make_row()})
        answers = FakeAnswers(results=[asyncpg.PostgresConnectionError("connection lost")])
        lookup = FakeLookup([make_response(), make_response()])
        resolver = make_resolver(rows, lookup, answers)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert (await resolver.resolve(7)).outcome is Outcome.LML_POSITIVE
        assert "answer not stored rotation_id=7" in caplog.text
        assert (await resolver.resolve(7)).outcome is Outcome.LML_POSITIVE
        assert len(lookup.calls) == 2

    async def test_must_store_lets_the_store_error_propagate(self) -> None:
        """With ``must_store`` (the walk) a database error while saving is raised, and nothing is cached."""
        rows = FakeRows({7: make_row()})
        answers = FakeAnswers(results=[ConnectionRefusedError(111, "Connection refused"), 1])
        lookup = FakeLookup([make_response(), make_response()])
        resolver = make_resolver(rows, lookup, answers)
        with pytest.raises(ConnectionRefusedError):
            await resolver.resolve(7, priority="warm", must_store=True)
        assert (await resolver.resolve(7, priority="warm", must_store=True)).outcome is Outcome.LML_POSITIVE
        assert len(lookup.calls) == 2

    async def test_must_store_still_accepts_a_discarded_answer(self) -> None:
        """With ``must_store``, an answer the store discards because the row changed is not an error."""
        rows, answers = FakeRows({7: make_row()}), FakeAnswers(results=[None])
        resolver = make_resolver(rows, FakeLookup([make_response()]), answers)
        assert (await resolver.resolve(7, must_store=True)).outcome is Outcome.LML_POSITIVE

    async def test_valid_stored_answer_is_used_without_lml(self) -> None:
        """On a cache miss a persisted answer is served (and cached) without asking LML."""
        tracks = tracks_body(TRACKS).text
        rows = FakeRows({7: make_row(stored=make_stored(release_id=None, tracks=tracks))})
        lookup, answers = FakeLookup(), FakeAnswers()
        resolver = make_resolver(rows, lookup, answers)
        first = await resolver.resolve(7)
        assert first.outcome is Outcome.CACHE_HIT
        assert first.source == PickerSource(None, TrackBody.of_json(tracks))
        assert (await resolver.resolve(7)).source == first.source
        assert (rows.reads, lookup.calls, answers.saves) == (1, [], [])

    async def test_stored_negative_is_a_cache_negative(self) -> None:
        """A persisted confirmed miss answers "nothing to show" without asking LML."""
        stored = make_stored(outcome="lml_negative", release_id=None, tracks=None)
        lookup = FakeLookup()
        result = await make_resolver(FakeRows({7: make_row(stored=stored)}), lookup).resolve(7)
        assert (result.outcome, result.source) == (Outcome.CACHE_NEGATIVE, None)
        assert lookup.calls == []

    async def test_stored_answer_lives_only_as_long_as_it_has_left(self) -> None:
        """A persisted answer is cached for its remaining lifetime, then the row is read again."""
        clock = FakeClock()
        rows = FakeRows({7: make_row(stored=make_stored(ttl_s=120.0))})
        resolver = make_resolver(rows, caches=make_caches(clock))
        await resolver.resolve(7)
        clock.now = 119.0
        await resolver.resolve(7)
        assert rows.reads == 1
        clock.now = 121.0
        await resolver.resolve(7)
        assert rows.reads == 2

    async def test_fresh_recomputes_despite_cache_and_store(self) -> None:
        """``fresh=True`` ignores the cached and the persisted answer, asks LML and saves the new answer."""
        rows = FakeRows({7: make_row(stored=make_stored(release_id=4080))})
        lookup, answers = FakeLookup([make_response(top_release_id=5)]), FakeAnswers()
        resolver = make_resolver(rows, lookup, answers)
        assert (await resolver.resolve(7)).source == PickerSource(4080, None)
        refreshed = await resolver.resolve(7, fresh=True)
        assert (refreshed.outcome, refreshed.source) == (Outcome.LML_POSITIVE, PickerSource(5, None))
        assert [save["release_id"] for save in answers.saves] == [5]
        assert (await resolver.resolve(7)).source == PickerSource(5, None)

    async def test_inactive_rows_are_not_persisted(self) -> None:
        """Only rows in rotation are written to the answer store; an inactive row's answer is still served."""
        rows, answers = FakeRows({7: make_row(direct_release_id=11, active=False)}), FakeAnswers()
        resolver = make_resolver(rows, answers=answers)
        assert (await resolver.resolve(7)).outcome is Outcome.TIER1
        assert (await resolver.resolve(7)).outcome is Outcome.CACHE_HIT
        assert answers.saves == []

    async def test_load_puts_a_persisted_answer_in_memory(self) -> None:
        """A loaded answer is served without reading the row."""
        rows = FakeRows({7: make_row()})
        resolver = make_resolver(rows)
        resolver.load(make_stored(release_id=99))
        result = await resolver.resolve(7)
        assert (result.outcome, result.source) == (Outcome.CACHE_HIT, PickerSource(99, None))
        assert rows.reads == 0
        assert resolver.cached_ids() == [7]


class TestTtlJitter:
    @pytest.mark.parametrize(
        ("draw", "ttl_s"),
        [
            pytest.param(0.0, TTL_S, id="no-jitter"),
            pytest.param(0.5, 0.95 * TTL_S, id="half"),
            pytest.param(0.999_999, 0.9 * TTL_S, id="most"),
        ],
    )
    async def test_lifetime_is_spread_over_the_last_tenth(self, draw: float, ttl_s: float) -> None:
        """An answer lives between 0.9 and 1.0 times the cache TTL, depending on the random draw."""
        answers = FakeAnswers()
        await make_resolver(
            FakeRows({7: make_row(direct_release_id=11)}), answers=answers, rng=FixedRandom(draw)
        ).resolve(7)
        assert answers.saves[0]["ttl_s"] == pytest.approx(ttl_s, rel=1e-5)

    async def test_many_answers_stay_within_bounds_and_differ(self) -> None:
        """With a real random source, lifetimes vary and always stay within [0.9, 1.0] x the TTL."""
        rows = FakeRows({rid: make_row(rid, direct_release_id=rid) for rid in range(1, 201)})
        answers = FakeAnswers()
        resolver = make_resolver(rows, answers=answers, rng=random.Random(20261129))
        for rid in range(1, 201):
            await resolver.resolve(rid)
        lifetimes = [save["ttl_s"] for save in answers.saves]
        assert all(0.9 * TTL_S <= ttl <= TTL_S for ttl in lifetimes)
        assert max(lifetimes) - min(lifetimes) > 0.05 * TTL_S

    async def test_cached_answer_expires_with_its_jittered_lifetime(self) -> None:
        """The cached copy expires when the stored one does."""
        clock = FakeClock()
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows, caches=make_caches(clock), rng=FixedRandom(0.5))
        await resolver.resolve(7)
        clock.now = 0.95 * TTL_S - 1
        assert (await resolver.resolve(7)).outcome is Outcome.CACHE_HIT
        clock.now = 0.95 * TTL_S + 1
        assert (await resolver.resolve(7)).outcome is Outcome.TIER1


class TestColdCache:
    async def test_unknown_id_is_remembered_briefly(self) -> None:
        """A missing row is not read again for NOT_FOUND_TTL_S, then it is."""
        clock = FakeClock()
        rows = FakeRows()
        resolver = make_resolver(rows, caches=make_caches(clock))
        assert (await resolver.resolve(99)).outcome is Outcome.NOT_FOUND
        assert (await resolver.resolve(99)).outcome is Outcome.CACHE_NEGATIVE
        assert rows.reads == 1
        clock.now = NOT_FOUND_TTL_S + 1
        assert (await resolver.resolve(99)).outcome is Outcome.NOT_FOUND
        assert rows.reads == 2

    async def test_unknown_ids_never_evict_an_active_row(self) -> None:
        """However many unknown ids are asked for, an active row's cached answer stays."""
        caches = make_caches(rotation_max=2, cold_max=3)
        rows, lookup = FakeRows({7: make_row()}), FakeLookup([make_response()])
        resolver = make_resolver(rows, lookup, caches=caches)
        await resolver.resolve(7)
        for unknown in range(1000, 1100):
            assert (await resolver.resolve(unknown)).outcome is Outcome.NOT_FOUND
        assert (await resolver.resolve(7)).outcome is Outcome.CACHE_HIT
        assert len(lookup.calls) == 1
        assert caches.rotation.evictions == 0

    async def test_inactive_rows_never_evict_an_active_row(self) -> None:
        """Answers for rows out of rotation go to the cold cache, not the active rows' cache."""
        caches = make_caches(rotation_max=1, cold_max=3)
        rows = FakeRows({7: make_row(direct_release_id=11)})
        rows.rows.update({rid: make_row(rid, direct_release_id=rid, active=False) for rid in range(20, 30)})
        resolver = make_resolver(rows, caches=caches)
        await resolver.resolve(7)
        for rid in range(20, 30):
            await resolver.resolve(rid)
        assert (await resolver.resolve(7)).outcome is Outcome.CACHE_HIT
        assert caches.rotation.keys() == [7]


class TestRevalidate:
    async def test_changed_and_removed_rows_are_dropped(self) -> None:
        """Answers whose row inputs changed or whose row is gone are dropped; unchanged ones stay."""
        rows = FakeRows({rid: make_row(rid, direct_release_id=rid) for rid in (1, 2, 3)})
        resolver = make_resolver(rows)
        for rid in (1, 2, 3):
            await resolver.resolve(rid)
        dropped = resolver.revalidate([1, 2, 3], {1: INPUTS, 2: "fingerprint-v2"})
        assert sorted(dropped) == [2, 3]
        assert resolver.cached_ids() == [1]

    async def test_changed_row_is_resolved_again(self) -> None:
        """After a row's inputs change, its next open reads it again."""
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows)
        await resolver.resolve(7)
        rows.rows[7] = make_row(direct_release_id=12, inputs="fingerprint-v2")
        assert resolver.revalidate([7], {7: "fingerprint-v2"}) == [7]
        assert (await resolver.resolve(7)).source == PickerSource(12, None)

    async def test_cold_entries_are_dropped(self) -> None:
        """A remembered unknown id is forgotten when checked, so a row inserted since is found at once."""
        rows = FakeRows()
        resolver = make_resolver(rows)
        await resolver.resolve(7)
        rows.rows[7] = make_row(direct_release_id=11)
        assert resolver.revalidate([7], {7: INPUTS}) == [7]
        assert (await resolver.resolve(7)).outcome is Outcome.TIER1

    async def test_unchanged_rows_are_kept(self) -> None:
        """Checking rows whose inputs did not change drops nothing."""
        resolver = make_resolver(FakeRows({7: make_row(direct_release_id=11)}))
        await resolver.resolve(7)
        assert resolver.revalidate([7, 8], {7: INPUTS}) == []
        assert resolver.cached_ids() == [7]


class TestPrefetch:
    async def test_prefetched_rows_are_used_once_without_a_query(self) -> None:
        """The walk's bulk read replaces each row's own query (missing rows included)."""
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows)
        await resolver.prefetch([7, 8])
        assert (await resolver.resolve(7)).outcome is Outcome.TIER1
        assert (await resolver.resolve(8)).outcome is Outcome.NOT_FOUND
        assert (rows.bulk_reads, rows.reads) == (1, 0)

    async def test_revalidation_drops_prefetched_rows(self) -> None:
        """A row that changed after the bulk read is read again."""
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows)
        await resolver.prefetch([7])
        rows.rows[7] = make_row(direct_release_id=12, inputs="fingerprint-v2")
        resolver.revalidate([7], {7: "fingerprint-v2"})
        assert (await resolver.resolve(7)).source == PickerSource(12, None)
        assert rows.reads == 1

    async def test_old_prefetched_rows_are_ignored(self) -> None:
        """Prefetched data older than 30 s (a long live-DJ pause) is not trusted."""
        clock = FakeClock()
        rows = FakeRows({7: make_row(direct_release_id=11)})
        resolver = make_resolver(rows, caches=make_caches(clock))
        await resolver.prefetch([7])
        clock.now = 31.0
        await resolver.resolve(7)
        assert rows.reads == 1


class TestVariousArtists:
    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("Various Artists", id="title-case"),
            pytest.param("various artists", id="lower"),
            pytest.param("VARIOUS ARTISTS", id="upper"),
            pytest.param("Various Artist", id="singular"),
            pytest.param("various", id="various"),
            pytest.param("V/A", id="v-slash-a"),
            pytest.param("V.A.", id="v-dot-a"),
            pytest.param("v a", id="v-space-a"),
            pytest.param("Var Artists", id="var"),
            pytest.param("Var. Artists", id="var-dot"),
            pytest.param("  Various Artists  ", id="padded"),
        ],
    )
    def test_matches(self, name: str) -> None:
        """Each spelling of Various Artists is recognised."""
        assert is_various_artists(name)

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("Variety Pack", id="variety"),
            pytest.param("Variations", id="variations"),
            pytest.param("Autechre", id="artist"),
            pytest.param("", id="empty"),
            pytest.param(None, id="none"),
            pytest.param("Vast Aire", id="initials-va"),
        ],
    )
    def test_does_not_match(self, name: str | None) -> None:
        """Real artist names are not mistaken for Various Artists."""
        assert not is_various_artists(name)
