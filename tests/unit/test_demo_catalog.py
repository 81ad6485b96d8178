"""The demo catalog is deterministic, covers every outcome and agrees with its own LML fixtures."""

from __future__ import annotations

import datetime
import re
from collections import Counter

import pytest

from backend.services.lookup_coordinator import lookup_key
from devtools import demo_catalog as dc

TODAY = datetime.date(2026, 8, 22)
DUPLICATE_KINDS = ("linked", "unlinked_case", "unlinked_spacing", "other_bin")
REAL_ALBUMS = {
    ("Autechre", "Confield"),
    ("Jessica Pratt", "On Your Own Love Again"),
    ("Stereolab", "Dots and Loops"),
    ("Yo La Tengo", "I Can Hear the Heart Beating as One"),
    ("Superchunk", "Foolish"),
    ("Broadcast", "Tender Buttons"),
    ("Cat Power", "Moon Pix"),
    ("Low", "Double Negative"),
    ("Neutral Milk Hotel", "In the Aeroplane Over the Sea"),
    ("Pavement", "Slanted and Enchanted"),
    ("Waxahatchee", "Saint Cloud"),
    ("Archers of Loaf", "Icky Mettle"),
    ("The Mountain Goats", "Tallahassee"),
    ("Alice Coltrane", "Journey in Satchidananda"),
}
_LML_KINDS = (
    dc.TIER2_NULL_IDENTITY,
    dc.LML_INLINE,
    dc.LML_RELEASE,
    dc.MB_RESCUE,
    dc.SENTINEL_NO_TRACKS,
    dc.FALLBACK,
    dc.VARIOUS_ARTISTS,
    dc.LML_TIMEOUT,
    dc.LML_DEGRADED,
)


@pytest.fixture(scope="module")
def catalog() -> dc.DemoCatalog:
    """The full catalog for a fixed date."""
    return dc.build_demo_catalog(TODAY)


@pytest.fixture(scope="module")
def small_catalog() -> dc.DemoCatalog:
    """The small catalog for a fixed date."""
    return dc.build_demo_catalog(TODAY, "small")


@pytest.fixture(scope="module", params=["full", "small"])
def any_catalog(
    request: pytest.FixtureRequest, catalog: dc.DemoCatalog, small_catalog: dc.DemoCatalog
) -> dc.DemoCatalog:
    """Each size of catalog in turn."""
    return catalog if request.param == "full" else small_catalog


def originals(catalog: dc.DemoCatalog) -> tuple[dc.RotationRow, ...]:
    """The rows that are not list duplicates of another row."""
    return tuple(r for r in catalog.rotation if r.duplicate is None)


def _fixture(catalog: dc.DemoCatalog, row: dc.RotationRow) -> dc.LookupFixture:
    assert row.lml_key is not None
    return catalog.lookups[row.lml_key]


def _release_ids_of(rows: tuple[dc.RotationRow, ...], catalog: dc.DemoCatalog) -> list[int]:
    ids = []
    for row in rows:
        artwork = _fixture(catalog, row).results[0].artwork
        assert artwork is not None
        ids.append(artwork.release_id)
    return ids


class TestShape:
    """Row counts, dates and bins."""

    def test_two_builds_are_equal(self, catalog: dc.DemoCatalog) -> None:
        """Building twice for the same day yields an equal catalog."""
        assert dc.build_demo_catalog(TODAY) == catalog

    def test_another_day_keeps_the_names(self, catalog: dc.DemoCatalog) -> None:
        """Only dates move with ``today``; names and fixture keys stay put."""
        other = dc.build_demo_catalog(TODAY + datetime.timedelta(days=3))
        assert [(r.artist_name, r.album_title) for r in other.rotation] == [
            (r.artist_name, r.album_title) for r in catalog.rotation
        ]
        assert set(other.lookups) == set(catalog.lookups)

    def test_about_310_active_rows_and_killed_rows(self, catalog: dc.DemoCatalog) -> None:
        """There are ~310 active rows, ~40 killed in the past and 2 killed today."""
        assert 300 <= len(catalog.active_rows()) <= 320
        killed = catalog.killed_rows()
        assert sum(r.kill_date is not None and r.kill_date < TODAY for r in killed) >= 38
        assert sum(r.kill_date == TODAY for r in catalog.rotation) == 2
        assert len(catalog.active_rows()) + len(killed) == len(catalog.rotation)

    def test_a_few_active_rows_have_a_future_kill_date(self, catalog: dc.DemoCatalog) -> None:
        """Some active rows are scheduled to be killed later."""
        future = [r for r in catalog.active_rows() if r.kill_date is not None]
        assert 3 <= len(future) <= 10
        assert all(r.kill_date is not None and r.kill_date > TODAY for r in future)

    def test_active_add_dates_span_the_last_six_months(self, catalog: dc.DemoCatalog) -> None:
        """Active rows were added within the last ~180 days, none in the future."""
        ages = [(TODAY - r.add_date).days for r in catalog.active_rows()]
        assert min(ages) >= 0 and max(ages) <= 180
        assert max(ages) - min(ages) > 150

    def test_bins_are_a_believable_mix(self, catalog: dc.DemoCatalog) -> None:
        """All four bins appear, with more M/L than H/S."""
        bins = Counter(r.rotation_bin for r in catalog.active_rows())
        assert set(bins) == {"H", "M", "L", "S"}
        assert bins["M"] + bins["L"] > bins["H"] + bins["S"]

    def test_album_indexes_point_at_matching_albums(self, catalog: dc.DemoCatalog) -> None:
        """Linked rows reference a library album with the same title."""
        linked = [r for r in catalog.rotation if r.album_index is not None]
        assert len(linked) > 100
        for row in linked:
            assert row.album_index is not None
            assert catalog.albums[row.album_index].album_title == row.album_title


class TestOutcomes:
    """Every outcome is represented in plausible numbers."""

    def test_every_outcome_is_represented(self, catalog: dc.DemoCatalog) -> None:
        """Each outcome has at least one active row."""
        assert set(catalog.outcome_counts()) == set(dc.OUTCOMES)

    def test_counts_follow_the_suggested_mix(self, catalog: dc.DemoCatalog) -> None:
        """The big buckets are roughly the sizes the demo is designed around."""
        counts = catalog.outcome_counts()
        assert 100 <= counts[dc.LML_INLINE] <= 130
        assert 50 <= counts[dc.LML_RELEASE] <= 70
        assert counts[dc.LML_TIMEOUT] == 2 and counts[dc.LML_DEGRADED] == 1
        assert sum(counts.values()) == len(catalog.active_rows())

    def test_rows_expecting_filters_by_outcome(self, catalog: dc.DemoCatalog) -> None:
        """``rows_expecting`` agrees with ``outcome_counts``."""
        counts = catalog.outcome_counts(active_only=False)
        for outcome in dc.OUTCOMES:
            assert len(catalog.rows_expecting(outcome, active_only=False)) == counts.get(outcome, 0)


class TestNames:
    """Names are unique, bounded and read like real records."""

    def test_artist_album_pairs_are_unique(self, any_catalog: dc.DemoCatalog) -> None:
        """Apart from the list duplicates, no two rows share a normalised (artist, album) pair."""
        keys = [lookup_key(r.artist_name, r.album_title) for r in originals(any_catalog)]
        assert len(keys) == len(set(keys))

    def test_names_fit_the_columns(self, catalog: dc.DemoCatalog) -> None:
        """Every name fits varchar(128)."""
        for row in catalog.rotation:
            for value in (row.artist_name, row.album_title, row.record_label):
                assert value is None or len(value) <= 128

    def test_names_are_not_placeholders(self, catalog: dc.DemoCatalog) -> None:
        """No "Artist 1"-style names anywhere."""
        placeholder = re.compile(r"^(artist|album|track|title|label)\s*\d+$", re.IGNORECASE)
        names = [n for r in catalog.rotation for n in (r.artist_name, r.album_title) if n]
        names += [t.title for rel in catalog.releases.values() for t in rel.tracklist]
        assert not [n for n in names if placeholder.match(n)]
        assert len({r.artist_name for r in catalog.rotation}) > 250

    def test_some_real_college_radio_names(self, catalog: dc.DemoCatalog) -> None:
        """A handful of real-world albums are mixed in."""
        pairs = {(r.artist_name, r.album_title) for r in catalog.rotation}
        assert len(pairs & REAL_ALBUMS) >= 10


class TestFixtureConsistency:
    """Rows and LML fixtures agree, so the seed and the fake tell the same story."""

    def test_lml_rows_have_lookup_fixtures(self, catalog: dc.DemoCatalog) -> None:
        """Every row designed to reach LML has a fixture under its lookup key."""
        for row in catalog.rotation:
            if row.expected in _LML_KINDS:
                assert row.lml_key in catalog.lookups, row

    def test_rows_that_never_reach_lml_have_no_fixture(self, catalog: dc.DemoCatalog) -> None:
        """Stamped rows are designed to miss, and no-text rows have no key at all."""
        for row in catalog.rows_expecting(dc.STAMP_FRESH):
            assert row.lml_key not in catalog.lookups
        for row in catalog.rows_expecting(dc.NO_TEXT):
            assert row.lml_key is None

    def test_tier1_and_tier2_ids_have_releases(self, catalog: dc.DemoCatalog) -> None:
        """Stored tier-1/2 ids resolve to release fixtures."""
        for row in catalog.rotation:
            identity = catalog.albums[row.album_index].identity if row.album_index is not None else None
            if row.expected in (dc.TIER1, dc.TIER1_AND_TIER2):
                assert row.discogs_release_id in catalog.releases
            if row.expected in (dc.TIER2, dc.TIER1_AND_TIER2):
                assert identity is not None and identity.discogs_release_id in catalog.releases
            if row.expected == dc.TIER2:
                assert row.discogs_release_id is None
            if row.expected == dc.TIER1_AND_TIER2:
                assert identity is not None and identity.discogs_release_id != row.discogs_release_id
            if row.expected == dc.TIER2_NULL_IDENTITY:
                assert identity is not None and identity.discogs_release_id is None

    def test_release_404_ids_are_absent(self, catalog: dc.DemoCatalog) -> None:
        """One tier-1 row and the LML rows point at releases the fake does not have."""
        rows = catalog.rows_expecting(dc.RELEASE_404)
        tier1 = [r for r in rows if r.discogs_release_id is not None]
        assert len(tier1) == 1 and tier1[0].discogs_release_id not in catalog.releases
        for row in rows:
            if row.discogs_release_id is None:
                fixture = _fixture(catalog, row)
                assert fixture.search_type == "direct" and fixture.tracklist is None
                assert fixture.results[0].artwork is not None
                assert fixture.results[0].artwork.release_id not in catalog.releases

    def test_inline_rows_carry_the_release_tracklist(self, catalog: dc.DemoCatalog) -> None:
        """Inline hits are direct, have a real release id and the same tracks as the release."""
        for row in catalog.rows_expecting(dc.LML_INLINE):
            fixture = _fixture(catalog, row)
            artwork = fixture.results[0].artwork
            assert fixture.search_type == "direct" and artwork is not None and artwork.release_id > 0
            assert fixture.tracklist == catalog.releases[artwork.release_id].tracklist

    def test_release_rows_have_no_inline_tracks_and_share_some_ids(self, catalog: dc.DemoCatalog) -> None:
        """Release-path hits carry no tracklist, resolve to a release, and several share one."""
        rows = catalog.rows_expecting(dc.LML_RELEASE, active_only=False)
        for row in rows:
            assert _fixture(catalog, row).tracklist is None
        ids = _release_ids_of(rows, catalog)
        assert all(i in catalog.releases for i in ids)
        assert any(n >= 2 for n in Counter(ids).values())

    def test_sentinel_rows(self, catalog: dc.DemoCatalog) -> None:
        """MB-rescue rows carry tracks with the 0 sentinel; sentinel rows carry none."""
        for outcome, has_tracks in ((dc.MB_RESCUE, True), (dc.SENTINEL_NO_TRACKS, False)):
            for row in catalog.rows_expecting(outcome):
                fixture = _fixture(catalog, row)
                artwork = fixture.results[0].artwork
                assert artwork is not None and artwork.release_id == 0 and artwork.release_url == ""
                assert bool(fixture.tracklist) is has_tracks

    def test_negative_and_transient_rows(self, catalog: dc.DemoCatalog) -> None:
        """Fallback, no-match, timeout and degraded fixtures have the designed flags."""
        for row in catalog.rows_expecting(dc.FALLBACK):
            fixture = _fixture(catalog, row)
            assert fixture.search_type == "fallback" and fixture.results and fixture.song_not_found
        for row in catalog.rows_expecting(dc.NO_MATCH):
            assert row.lml_key is not None
            assert not catalog.lookups.get(row.lml_key, dc.LookupFixture("none")).results
        for row in catalog.rows_expecting(dc.LML_TIMEOUT):
            fixture = _fixture(catalog, row)
            assert fixture.timeout and not fixture.results
        for row in catalog.rows_expecting(dc.LML_DEGRADED):
            fixture = _fixture(catalog, row)
            assert fixture.degraded and fixture.degraded_reason and not fixture.results

    def test_stamps(self, catalog: dc.DemoCatalog) -> None:
        """Fresh stamps are 2 days old, and a couple of rows carry a stale 30-day stamp."""
        now = datetime.datetime.combine(TODAY, datetime.time(12), tzinfo=datetime.timezone.utc)
        ages = [
            (now - r.tracklist_lookup_attempted_at).days
            for r in catalog.rotation
            if r.tracklist_lookup_attempted_at is not None
        ]
        assert Counter(ages)[2] >= 5 and Counter(ages)[30] >= 2
        for row in catalog.rows_expecting(dc.STAMP_FRESH):
            assert row.tracklist_lookup_attempted_at == now - datetime.timedelta(days=2)


class TestVariousArtists:
    """V/A rows are looked up album-only and carry per-track artists."""

    def test_keyed_album_only(self, catalog: dc.DemoCatalog) -> None:
        """The fixture key omits the artist; the artist-qualified key does not exist."""
        rows = catalog.rows_expecting(dc.VARIOUS_ARTISTS)
        assert len({r.artist_name for r in rows}) >= 4
        for row in rows:
            assert dc.is_various_artists_name(row.artist_name)
            assert row.lml_key == lookup_key(None, row.album_title)
            assert row.lml_key in catalog.lookups
            assert lookup_key(row.artist_name, row.album_title) not in catalog.lookups

    def test_tracks_have_per_track_artists_with_one_or_two_gaps(self, catalog: dc.DemoCatalog) -> None:
        """Compilation tracks are credited, except one or two that fall back to the release artist."""
        for row in catalog.rows_expecting(dc.VARIOUS_ARTISTS):
            artwork = _fixture(catalog, row).results[0].artwork
            assert artwork is not None
            release = catalog.releases[artwork.release_id]
            uncredited = [t for t in release.tracklist if not t.artists]
            assert release.artist == "Various" and 1 <= len(uncredited) <= 2


class TestTracklists:
    """Tracklists look like Discogs data."""

    def test_track_shapes(self, catalog: dc.DemoCatalog) -> None:
        """4-14 tracks, vinyl or CD positions, m:ss durations (some missing)."""
        durations: list[str | None] = []
        for release in catalog.releases.values():
            assert 4 <= len(release.tracklist) <= 14
            positions = [t.position for t in release.tracklist]
            assert all(re.fullmatch(r"[A-D]\d{1,2}|\d{1,2}", p) for p in positions)
            assert len({t.title for t in release.tracklist}) == len(release.tracklist)
            durations += [t.duration for t in release.tracklist]
        assert all(d is None or re.fullmatch(r"\d{1,2}:[0-5]\d", d) for d in durations)
        assert 0 < durations.count(None) < len(durations) // 5
        assert any(p.startswith("A") for rel in catalog.releases.values() for p in (t.position for t in rel.tracklist))


class TestHelpers:
    """``lookup_key`` and ``is_various_artists_name``."""

    def test_fixtures_are_keyed_as_the_service_keys_lookups(self, catalog: dc.DemoCatalog) -> None:
        """The LML fake finds each fixture under the coordinator's key for the row's artist and album."""
        for kind in (dc.LML_INLINE, dc.LML_RELEASE, dc.FALLBACK, dc.LML_TIMEOUT):
            for row in catalog.rows_expecting(kind):
                assert lookup_key(row.artist_name, row.album_title) in catalog.lookups, row

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            pytest.param(("Autechre", "Confield"), ("autechre", "CONFIELD"), id="case"),
            pytest.param(
                ("  The  Velvet\tOrchards ", "Paper   Lanterns"), ("the velvet orchards", "paper lanterns"), id="spaces"
            ),
            pytest.param((None, "Nuggets"), ("   ", "nuggets"), id="missing-artist"),
            pytest.param(("Low", None), ("low", ""), id="missing-album"),
        ],
    )
    def test_equivalent_spellings_share_a_key(
        self, a: tuple[str | None, str | None], b: tuple[str | None, str | None]
    ) -> None:
        """Keys ignore case, surrounding and repeated whitespace, and treat missing and blank parts alike."""
        assert lookup_key(*a) == lookup_key(*b)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            pytest.param(("Low", "Things We Lost"), ("Low", "Things We Lost in the Fire"), id="other-album"),
            pytest.param((None, "Nuggets"), ("Various", "Nuggets"), id="artist-matters"),
            pytest.param(("a|b", "c"), ("a", "b|c"), id="separator-in-a-title"),
        ],
    )
    def test_different_lookups_have_different_keys(
        self, a: tuple[str | None, str | None], b: tuple[str | None, str | None]
    ) -> None:
        """Different artist/album pairs never share a key."""
        assert lookup_key(*a) != lookup_key(*b)

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
        ],
    )
    def test_various_artists_names(self, name: str) -> None:
        """Upstream's V/A spellings are recognised."""
        assert dc.is_various_artists_name(name)

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("Variety Pack", id="variety"),
            pytest.param("Variations", id="variations"),
            pytest.param("Autechre", id="artist"),
            pytest.param("", id="empty"),
            pytest.param(None, id="none"),
        ],
    )
    def test_not_various_artists_names(self, name: str | None) -> None:
        """Look-alikes and blanks are not V/A."""
        assert not dc.is_various_artists_name(name)


class TestSizes:
    """The small catalog keeps every case the full one has, in fewer rows."""

    def test_small_catalog_covers_every_outcome(self, small_catalog: dc.DemoCatalog) -> None:
        """Each outcome has at least one active row in the small catalog, with far fewer rows than the full one."""
        assert set(small_catalog.outcome_counts()) == set(dc.OUTCOMES)
        assert 25 <= len(small_catalog.active_rows()) <= 50

    def test_small_catalog_has_killed_and_future_kill_rows(self, small_catalog: dc.DemoCatalog) -> None:
        """The small catalog has rows killed in the past, killed today and scheduled to be killed."""
        today = small_catalog.today
        assert any(r.kill_date is not None and r.kill_date < today for r in small_catalog.rotation)
        assert any(r.kill_date == today for r in small_catalog.rotation)
        assert any(r.kill_date is not None and r.kill_date > today for r in small_catalog.active_rows())

    def test_small_catalog_is_deterministic(self, small_catalog: dc.DemoCatalog) -> None:
        """Building the small catalog twice for the same day yields an equal catalog."""
        assert dc.build_demo_catalog(TODAY, "small") == small_catalog

    def test_unknown_size_is_rejected(self) -> None:
        """Only the named sizes exist."""
        with pytest.raises(KeyError):
            dc.build_demo_catalog(TODAY, "huge")

    def test_small_catalog_fixtures_are_consistent(self, small_catalog: dc.DemoCatalog) -> None:
        """Every small-catalog row designed to reach LML has its lookup fixture, and inline hits their release."""
        for row in small_catalog.rotation:
            if row.expected in _LML_KINDS:
                assert row.lml_key in small_catalog.lookups, row
        for row in small_catalog.rows_expecting(dc.LML_INLINE):
            artwork = _fixture(small_catalog, row).results[0].artwork
            assert artwork is not None and artwork.release_id in small_catalog.releases


class TestDuplicates:
    """Rows that duplicate another for the rotation list keep that row's outcome."""

    def test_each_kind_of_duplicate_is_present(self, any_catalog: dc.DemoCatalog) -> None:
        """Both sizes carry one row of each duplicate kind, and nothing else is marked a duplicate."""
        kinds = Counter(r.duplicate for r in any_catalog.rotation if r.duplicate is not None)
        assert set(kinds) == set(DUPLICATE_KINDS)

    def test_duplicates_copy_an_active_rows_outcome(self, any_catalog: dc.DemoCatalog) -> None:
        """Each duplicate looks up like an active original row and is designed for the same outcome."""
        for dup in any_catalog.rotation:
            if dup.duplicate is None:
                continue
            assert dup.is_active(any_catalog.today)
            matches = [r for r in originals(any_catalog) if r.lml_key == dup.lml_key and r.is_active(any_catalog.today)]
            assert len(matches) == 1, dup
            assert matches[0].expected == dup.expected

    def test_duplicate_kinds_differ_as_described(self, any_catalog: dc.DemoCatalog) -> None:
        """Linked copies share the album and bin, other-bin copies only the album; unlinked ones vary the text."""
        for dup in any_catalog.rotation:
            if dup.duplicate is None:
                continue
            [original] = [r for r in originals(any_catalog) if r.lml_key == dup.lml_key]
            if dup.duplicate == "linked":
                assert dup.album_index is not None and dup.album_index == original.album_index
                assert dup.rotation_bin == original.rotation_bin and dup.add_date < original.add_date
            elif dup.duplicate == "other_bin":
                assert dup.album_index is not None and dup.album_index == original.album_index
                assert dup.rotation_bin != original.rotation_bin
            elif dup.duplicate == "unlinked_case":
                assert dup.album_index is None and original.album_index is None
                assert (dup.artist_name, dup.album_title) == (
                    (original.artist_name or "").upper(),
                    (original.album_title or "").upper(),
                )
            else:
                assert dup.album_index is None and original.album_index is None
                assert dup.album_title != original.album_title and "  " in (dup.album_title or "")


class TestLibraryAlbums:
    """Library albums carry what the list shows: genre, format and the call number parts."""

    def test_albums_carry_genre_format_and_call_number(self, any_catalog: dc.DemoCatalog) -> None:
        """Every album has a genre, a format, two call letters and positive call numbers."""
        for album in any_catalog.albums:
            assert album.genre and album.format
            assert re.fullmatch(r"[A-Z]{2}", album.code_letters)
            assert album.artist_genre_code >= 1 and album.code_number >= 1
        assert len({a.genre for a in any_catalog.albums}) >= 3
        assert len({a.format for a in any_catalog.albums}) >= 2

    def test_same_artist_and_genre_share_an_artist_genre_code(self, catalog: dc.DemoCatalog) -> None:
        """All albums of one artist in one genre have the same artist_genre_code."""
        codes: dict[tuple[str, str], set[int]] = {}
        for album in catalog.albums:
            codes.setdefault((album.artist_name, album.genre), set()).add(album.artist_genre_code)
        assert all(len(found) == 1 for found in codes.values())
        shared = Counter((a.artist_name, a.genre) for a in catalog.albums)
        assert any(n >= 2 for n in shared.values())  # the rule is exercised
