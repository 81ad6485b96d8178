"""Deterministic demo catalog that seeds PostgreSQL and feeds the LML fake, so both always agree."""

from __future__ import annotations

import datetime
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote_plus

from backend.services.lookup_coordinator import LookupKey, lookup_key
from backend.services.rotation_resolver import is_various_artists

CATALOG_SEED = 20260822
"""Seed of the catalog's private ``random.Random``; changing it reshuffles every name and id."""

# Outcome names: what a row is designed to make the picker do (``RotationRow.expected``).
TIER1 = "tier1"
TIER2 = "tier2"
TIER1_AND_TIER2 = "tier1_and_tier2"
TIER2_NULL_IDENTITY = "tier2_null_identity"
LML_INLINE = "lml_inline"
LML_RELEASE = "lml_release"
RELEASE_404 = "release_404"
MB_RESCUE = "mb_rescue"
SENTINEL_NO_TRACKS = "sentinel_no_tracks"
FALLBACK = "fallback"
NO_MATCH = "no_match"
VARIOUS_ARTISTS = "various_artists"
NO_TEXT = "no_text"
STAMP_FRESH = "stamp_fresh"
LML_TIMEOUT = "lml_timeout"
LML_DEGRADED = "lml_degraded"

OUTCOME_DESCRIPTIONS: Mapping[str, str] = {
    TIER1: "rotation.discogs_release_id set; the release fixture exists",
    TIER2: "album linked to a library_identity with a release id; rotation id NULL",
    TIER1_AND_TIER2: "both ids set and different; tier 1 wins",
    TIER2_NULL_IDENTITY: "linked identity has a NULL release id; falls to tier 3 (LML inline hit)",
    LML_INLINE: "LML direct match carrying an inline tracklist when extended",
    LML_RELEASE: "LML direct match with release_id > 0 and no inline tracklist; release fetched",
    RELEASE_404: "a release id the fake has no release for (one tier-1 row, the rest via LML)",
    MB_RESCUE: "LML direct match, release_id 0 sentinel plus an inline tracklist",
    SENTINEL_NO_TRACKS: "LML direct match, release_id 0 and no tracklist: negative",
    FALLBACK: "LML search_type 'fallback' with results: negative by the trust gate",
    NO_MATCH: "LML answers empty results: negative",
    VARIOUS_ARTISTS: "V/A artist name: LML asked album-only; per-track artists on the tracks",
    NO_TEXT: "artist_name or album_title NULL/empty: no LML call",
    STAMP_FRESH: "would be no_match but the negative stamp is 2 days old: no LML call",
    LML_TIMEOUT: "LML answers 200 with timeout=true and empty results: transient",
    LML_DEGRADED: "LML answers 200 with degraded=true and empty results: transient",
}
OUTCOMES: tuple[str, ...] = tuple(OUTCOME_DESCRIPTIONS)

_ACTIVE_PLAN: tuple[tuple[str, int], ...] = (
    (TIER1, 22),
    (TIER2, 22),
    (TIER1_AND_TIER2, 4),
    (TIER2_NULL_IDENTITY, 4),
    (LML_INLINE, 120),
    (LML_RELEASE, 62),
    (RELEASE_404, 9),
    (MB_RESCUE, 8),
    (SENTINEL_NO_TRACKS, 4),
    (FALLBACK, 10),
    (NO_MATCH, 22),
    (VARIOUS_ARTISTS, 10),
    (NO_TEXT, 5),
    (STAMP_FRESH, 5),
    (LML_TIMEOUT, 2),
    (LML_DEGRADED, 1),
)
_KILLED_PAST = 40
_KILLED_TODAY = 2
_FUTURE_KILL = 6
_EXTRA_LIBRARY_ALBUMS = 24
_KILLED_KINDS: tuple[str, ...] = (
    LML_INLINE, LML_INLINE, LML_INLINE, LML_INLINE, LML_RELEASE, LML_RELEASE,
    TIER1, TIER2, NO_MATCH, NO_MATCH, FALLBACK, VARIOUS_ARTISTS,
)  # fmt: skip


def _code_letters(artist: str) -> str:
    """Two call letters from the artist's sorting name (``The Velvet Orchards`` -> ``VE``)."""
    letters = re.sub(r"[^A-Za-z]", "", artist.removeprefix("The "))[:2].upper()
    return letters or "VA"


def _alphabetical(artist: str) -> str:
    """The library's sorting name: ``The Velvet Orchards`` -> ``Velvet Orchards, The``."""
    return f"{artist.removeprefix('The ')}, The" if artist.startswith("The ") else artist


# The resolver's own rule: the demo must look rows up exactly as the service will.
is_various_artists_name = is_various_artists


@dataclass(frozen=True)
class TrackFixture:
    """One tracklist entry, shaped like LML's ``DiscogsTrackItem``."""

    position: str
    title: str
    duration: str | None
    artists: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseFixture:
    """A Discogs release served by ``GET /api/v1/discogs/release/{id}``."""

    release_id: int
    title: str
    artist: str
    year: int | None
    label: str | None
    tracklist: tuple[TrackFixture, ...]
    genres: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    artist_id: int | None = None
    label_id: int | None = None
    catno: str | None = None
    released: str | None = None
    artwork_url: str | None = None


@dataclass(frozen=True)
class LibraryItemFixture:
    """LML's ``library_item`` for one result (``id == 0`` is a row-less result)."""

    id: int
    title: str | None
    artist: str | None
    label: str | None
    call_letters: str | None = None
    artist_call_number: int | None = None
    release_call_number: int | None = None
    genre: str | None = None
    format: str | None = None
    on_streaming: bool | None = None


@dataclass(frozen=True)
class ArtworkFixture:
    """The base (non-extended) fields of LML's ``DiscogsMatchResult``."""

    release_id: int
    release_url: str
    album: str | None
    artist: str | None
    artwork_url: str | None
    confidence: float
    release_year: int | None = None
    master_id: int | None = None
    artist_bio: str | None = None
    wikipedia_url: str | None = None
    spotify_url: str | None = None
    apple_music_url: str | None = None
    youtube_music_url: str | None = None
    bandcamp_url: str | None = None
    soundcloud_url: str | None = None
    streaming_status: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class LookupResultFixture:
    """One ``LookupResultItem``: a library item and its (optional) Discogs artwork."""

    library_item: LibraryItemFixture
    artwork: ArtworkFixture | None


@dataclass(frozen=True)
class LookupFixture:
    """The canned ``POST /api/v1/lookup`` answer for one lookup key.

    ``tracklist`` and the other extended fields are added to ``results[0].artwork`` only when
    the request says ``extended: true``.
    """

    search_type: str
    results: tuple[LookupResultFixture, ...] = ()
    tracklist: tuple[TrackFixture, ...] | None = None
    genres: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    label: str | None = None
    full_release_date: str | None = None
    discogs_artist_id: int | None = None
    artist_image_url: str | None = None
    song_not_found: bool = False
    found_on_compilation: bool = False
    context_message: str | None = None
    corrected_artist: str | None = None
    timeout: bool = False
    degraded: bool = False
    degraded_reason: str | None = None


@dataclass(frozen=True)
class LmlFixtures:
    """Just the LML side of a catalog, for building a fake from hand-made fixtures."""

    lookups: Mapping[LookupKey, LookupFixture]
    releases: Mapping[int, ReleaseFixture]


@dataclass(frozen=True)
class IdentityFixture:
    """A ``wxyc_schema.library_identity`` row (tier 2 when ``discogs_release_id`` is set)."""

    discogs_release_id: int | None
    method: str = "manual"
    confidence: float = 1.0


@dataclass(frozen=True)
class ArtistIds:
    """The six external ids on ``artists`` (the list route's ``reconciled_identity``)."""

    discogs_artist_id: int | None = None
    musicbrainz_artist_id: str | None = None
    wikidata_qid: str | None = None
    spotify_artist_id: str | None = None
    apple_music_artist_id: str | None = None
    bandcamp_id: str | None = None


@dataclass(frozen=True)
class LibraryAlbum:
    """A station ``library`` row (with its artist, genre and format), optionally with its identity row.

    ``code_letters``/``artist_genre_code``/``code_number`` make the call number the web app shows
    (e.g. "Rock LP VE 112/3"); ``artist_genre_code`` belongs to the (artist, genre) pair.
    """

    artist_name: str
    album_title: str
    label: str | None
    add_date: datetime.date
    identity: IdentityFixture | None = None
    genre: str = "Rock"
    format: str = "CD"
    code_letters: str = "XX"
    alphabetical_name: str = ""
    artist_genre_code: int = 1
    code_number: int = 1
    plays: int = 0
    artist_ids: ArtistIds | None = None


@dataclass(frozen=True)
class RotationRow:
    """A ``wxyc_schema.rotation`` row plus the outcome it is designed to produce."""

    artist_name: str | None
    album_title: str | None
    record_label: str | None
    rotation_bin: str
    add_date: datetime.date
    kill_date: datetime.date | None
    expected: str
    discogs_release_id: int | None = None
    album_index: int | None = None
    tracklist_lookup_attempted_at: datetime.datetime | None = None
    duplicate: str | None = None  # how this row duplicates another one for the list (see _add_duplicates)

    def is_active(self, today: datetime.date) -> bool:
        """Mirror the SQL predicate ``kill_date IS NULL OR kill_date > CURRENT_DATE``."""
        return self.kill_date is None or self.kill_date > today

    @property
    def lml_key(self) -> LookupKey | None:
        """The lookup key tier 3 would use (album-only for V/A), or None when it would not call LML."""
        if not self.artist_name or not self.album_title:
            return None
        artist = None if is_various_artists_name(self.artist_name) else self.artist_name
        return lookup_key(artist, self.album_title)


@dataclass(frozen=True)
class DemoCatalog:
    """The whole demo data set: library, rotation, and the LML fixtures derived from it."""

    today: datetime.date
    albums: tuple[LibraryAlbum, ...]
    rotation: tuple[RotationRow, ...]
    lookups: Mapping[LookupKey, LookupFixture]
    releases: Mapping[int, ReleaseFixture]

    def active_rows(self) -> tuple[RotationRow, ...]:
        """Rows the warm walker visits (``kill_date`` NULL or after ``today``)."""
        return tuple(r for r in self.rotation if r.is_active(self.today))

    def killed_rows(self) -> tuple[RotationRow, ...]:
        """Rows with ``kill_date <= today``."""
        return tuple(r for r in self.rotation if not r.is_active(self.today))

    def rows_expecting(self, outcome: str, *, active_only: bool = True) -> tuple[RotationRow, ...]:
        """Rows designed to produce ``outcome``."""
        rows = self.active_rows() if active_only else self.rotation
        return tuple(r for r in rows if r.expected == outcome)

    def outcome_counts(self, *, active_only: bool = True) -> dict[str, int]:
        """Count rows per expected outcome, in ``OUTCOMES`` order (zero counts omitted)."""
        rows = self.active_rows() if active_only else self.rotation
        counts = Counter(r.expected for r in rows)
        return {o: counts[o] for o in OUTCOMES if counts[o]}

    def lml_fixtures(self) -> LmlFixtures:
        """Return only the LML side (lookups and releases)."""
        return LmlFixtures(lookups=self.lookups, releases=self.releases)


# --- word lists ---------------------------------------------------------------------------

_ADJECTIVES = (
    "Velvet", "Paper", "Copper", "Hollow", "Silver", "Quiet", "Amber", "Static", "Golden", "Crooked",
    "Distant", "Electric", "Faded", "Gentle", "Glass", "Honeyed", "Idle", "Lunar", "Midnight",
    "Northern", "Pale", "Restless", "Rusted", "Salt", "Slow", "Southern", "Sunken", "Tender",
    "Violet", "Wandering", "Wild", "Winter", "Blue", "Cinder", "Feral", "Marble", "Neon", "Plastic",
    "Secret", "Vapor", "Tangled", "Borrowed", "Humming", "Lonesome", "Bright",
)  # fmt: skip
_PLURAL_NOUNS = (
    "Orchards", "Lanterns", "Harbors", "Rivers", "Magnets", "Satellites", "Moths", "Pilots", "Ghosts",
    "Horses", "Sparrows", "Gardens", "Engines", "Mirrors", "Signals", "Tigers", "Comets", "Ferns",
    "Bells", "Shadows", "Radios", "Oceans", "Windows", "Wolves", "Parades", "Cathedrals", "Dunes",
    "Echoes", "Foxes", "Islands", "Lighthouses", "Kites", "Ponies", "Saints", "Antlers",
)  # fmt: skip
_NOUNS = (
    "Harbor", "Lantern", "River", "Meadow", "Signal", "Mirror", "Garden", "Engine", "Comet",
    "Orchard", "Fern", "Bell", "Shadow", "Radio", "Ocean", "Window", "Wolf", "Parade", "Cathedral",
    "Dune", "Echo", "Island", "Tide", "Ember", "Thread", "Prism", "Atlas", "Compass", "Hymn",
    "Season", "Weather", "Canyon", "Kitchen", "Porch", "Highway", "Mountain", "Valley", "Station",
    "Telephone", "Balloon", "Lighthouse", "Tangerine", "Cassette", "Satellite", "Heron",
)  # fmt: skip
_FIRST_NAMES = (
    "Ada", "Benny", "Clara", "Dev", "Eliza", "Felix", "Greta", "Hollis", "Ines", "Jonah", "Kit",
    "Lena", "Marlo", "Nadia", "Otis", "Priya", "Quinn", "Rosalind", "Silas", "Tova", "Vera",
    "Wendell", "Xiomara", "Yusuf", "Zadie", "Margo", "Theo", "June", "Arlo", "Delphine",
)  # fmt: skip
_LAST_NAMES = (
    "Abernathy", "Bellweather", "Castellanos", "Delacroix", "Everly", "Fairbanks", "Greenleaf",
    "Hartigan", "Iwasaki", "Jablonski", "Kowalczyk", "Lindqvist", "Marchetti", "Nakamura", "Okafor",
    "Pemberton", "Quarles", "Rasmussen", "Sandoval", "Thibodeaux", "Underhill", "Valentine",
    "Whitlock", "Yarborough", "Zamora", "Oduya", "Haverford", "Lockhart", "Mbeki", "Castile",
)  # fmt: skip
_PLACES = (
    "Carrboro", "Saxapahaw", "Hillsborough", "Durham", "Mebane", "Pittsboro", "Boone", "Asheville",
    "the Cat's Cradle", "Local 506", "the Lakeside", "Motorco", "Greensboro", "Richmond",
)  # fmt: skip
_HOMETOWNS = (
    "Chapel Hill", "Durham", "Carrboro", "Greensboro", "Richmond", "Athens, Georgia", "Philadelphia",
    "Glasgow", "Montréal", "Lagos", "São Paulo", "Osaka", "Louisville", "Olympia", "Melbourne",
)  # fmt: skip
_LABELS = (
    "Merge Records", "Drag City", "Matador", "Sub Pop", "Warp Records", "Thrill Jockey", "Kranky",
    "Numero Group", "Sacred Bones", "Captured Tracks", "Mexican Summer", "Domino", "4AD",
    "Dead Oceans", "Jagjaguwar", "Secretly Canadian", "Light in the Attic", "Paradise of Bachelors",
    "Three Lobed Recordings", "Trouble in Mind", "Orindal Records", "Sahel Sounds", "Yep Roc",
    "Orchard Hum Tapes", "Porch Light Records", "Tarheel Static", "Little Heron Editions",
)  # fmt: skip
_VA_NAMES = (
    "Various Artists", "V/A", "Various", "VARIOUS ARTISTS", "V.A.", "Var. Artists", "Various Artist",
)  # fmt: skip
_GENRES: Mapping[str, tuple[str, ...]] = {
    "Rock": ("Indie Rock", "Post-Punk", "Shoegaze", "Garage Rock", "Psychedelic Rock", "Noise", "Slowcore"),
    "Electronic": ("Ambient", "IDM", "Techno", "Downtempo", "Experimental", "Drone"),
    "Jazz": ("Free Jazz", "Spiritual Jazz", "Hard Bop", "Modal", "Avant-garde Jazz"),
    "Folk, World, & Country": ("Folk", "Americana", "Bluegrass", "Highlife", "Desert Blues"),
    "Hip Hop": ("Boom Bap", "Abstract", "Conscious", "Instrumental"),
    "Funk / Soul": ("Soul", "Funk", "Disco", "Gospel", "Rhythm & Blues"),
    "Pop": ("Dream Pop", "Synth-pop", "Indie Pop", "Chamber Pop"),
    "Reggae": ("Dub", "Roots Reggae", "Lovers Rock"),
    "Latin": ("Cumbia", "Bossa Nova", "MPB", "Tropicália"),
}
_LIBRARY_GENRE = {
    "Rock": "Rock", "Electronic": "Electronic", "Jazz": "Jazz", "Folk, World, & Country": "OCS",
    "Hip Hop": "Hiphop", "Funk / Soul": "Soul", "Pop": "Rock", "Reggae": "Reggae", "Latin": "Rock",
}  # fmt: skip
_FORMATS = ("CD", "CD", "LP", "LP", "LP", '7"', "Cassette")
_BIN_WEIGHTS = (("H", 14), ("M", 36), ("L", 34), ("S", 16))
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EDITION_SUFFIXES = (" (Deluxe Edition)", " (Remastered)", " (Expanded Edition)", " (2xLP)", " (Anniversary)")

# (artist, album, label, year, Discogs genre, known Discogs release id or None)
_REAL_ALBUMS: tuple[tuple[str, str, str, int, str, int | None], ...] = (
    ("Autechre", "Confield", "Warp Records", 2001, "Electronic", 4080),
    ("Jessica Pratt", "On Your Own Love Again", "Drag City", 2015, "Folk, World, & Country", 6690542),
    ("Stereolab", "Dots and Loops", "Duophonic", 1997, "Rock", None),
    ("Yo La Tengo", "I Can Hear the Heart Beating as One", "Matador", 1997, "Rock", None),
    ("Superchunk", "Foolish", "Merge Records", 1994, "Rock", None),
    ("Broadcast", "Tender Buttons", "Warp Records", 2005, "Electronic", None),
    ("Cat Power", "Moon Pix", "Matador", 1998, "Rock", None),
    ("Mdou Moctar", "Afrique Victime", "Matador", 2021, "Rock", None),
    ("Cindy Lee", "Diamond Jubilee", "Realistik Studios", 2024, "Rock", None),
    ("Tirzah", "Devotion", "Domino", 2018, "Electronic", None),
    ("Duster", "Stratosphere", "Up Records", 1998, "Rock", None),
    ("Alice Coltrane", "Journey in Satchidananda", "Impulse!", 1971, "Jazz", None),
    ("Sessa", "Estrela Acesa", "Mexican Summer", 2022, "Latin", None),
    ("Chuquimamani-Condori", "DJ E", "self-released", 2023, "Electronic", None),
    ("Low", "Double Negative", "Sub Pop", 2018, "Rock", None),
    ("Neutral Milk Hotel", "In the Aeroplane Over the Sea", "Merge Records", 1998, "Rock", None),
    ("The Magnetic Fields", "69 Love Songs", "Merge Records", 1999, "Pop", None),
    ("Pavement", "Slanted and Enchanted", "Matador", 1992, "Rock", None),
    ("Waxahatchee", "Saint Cloud", "Merge Records", 2020, "Rock", None),
    ("Jenny Hval", "Blood Bitch", "Sacred Bones", 2016, "Electronic", None),
    ("Hiss Golden Messenger", "Bad Debt", "Merge Records", 2010, "Folk, World, & Country", None),
    ("Arthur Russell", "World of Echo", "Upside Records", 1986, "Electronic", None),
    ("Hailu Mergia", "Lala Belu", "Awesome Tapes From Africa", 2018, "Jazz", None),
    ("Tinariwen", "Amassakoul", "World Village", 2004, "Folk, World, & Country", None),
    ("Kali Malone", "The Sacrificial Code", "iDEAL Recordings", 2019, "Electronic", None),
    ("Polvo", "Exploded Drawing", "Touch and Go", 1996, "Rock", None),
    ("Archers of Loaf", "Icky Mettle", "Alias Records", 1993, "Rock", None),
    ("The Mountain Goats", "Tallahassee", "4AD", 2002, "Rock", None),
    ("Sylvan Esso", "What Now", "Loma Vista", 2017, "Electronic", None),
    ("Beverly Glenn-Copeland", "Keyboard Fantasies", "Invisible City Editions", 1986, "Electronic", None),
    ("Hand Habits", "Fun House", "Saddle Creek", 2021, "Rock", None),
    ("Bill Orcutt", "Music for Four Guitars", "Palilalia", 2022, "Rock", None),
)
# (album, label, year, Discogs genre) of real-looking compilations.
_REAL_COMPILATIONS: tuple[tuple[str, str, int, str], ...] = (
    ("Nuggets: Original Artyfacts from the First Psychedelic Era", "Elektra", 1972, "Rock"),
    ("Éthiopiques, Vol. 4: Ethio Jazz & Musique Instrumentale 1969-1974", "Buda Musique", 1998, "Jazz"),
    ("Personal Space: Electronic Soul 1974-1984", "Chocolate Industries", 2010, "Funk / Soul"),
    ("Wayfaring Strangers: Cosmic American Music", "Numero Group", 2016, "Folk, World, & Country"),
    ("Love, Peace & Poetry: Brazilian Psychedelic Music", "QDK Media", 2000, "Latin"),
)


@dataclass(frozen=True)
class _Names:
    artist: str
    album: str
    label: str
    year: int
    genre: str
    known_release_id: int | None = None


@dataclass(frozen=True)
class _RowSpec:
    kind: str
    state: str  # "active" | "future_kill" | "killed" | "killed_today"
    flavor: str = ""


class _Builder:
    """Accumulates the catalog; every random choice goes through ``self.rng`` in a fixed order."""

    def __init__(self, today: datetime.date) -> None:
        self.rng = random.Random(CATALOG_SEED)
        self.today = today
        self.albums: list[LibraryAlbum] = []
        self.rows: list[RotationRow] = []
        self.lookups: dict[LookupKey, LookupFixture] = {}
        self.releases: dict[int, ReleaseFixture] = {}
        self._used_keys: set[LookupKey] = set()
        self._used_release_ids: set[int] = set()
        self._artist_ids: dict[str, int] = {}
        self._label_ids: dict[str, int] = {}
        self._next_library_id = 60_000
        self._artist_codes: dict[tuple[str, str], int] = {}
        self._artist_ids_by_name: dict[str, ArtistIds | None] = {}
        self._real = list(_REAL_ALBUMS)
        self.rng.shuffle(self._real)
        self._real_comps = list(_REAL_COMPILATIONS)
        self._va_turn = 0
        self._shareable: list[tuple[_Names, int]] = []  # lml_release rows whose release can be shared

    # -- names ---------------------------------------------------------------------------

    def _artist_name(self) -> str:
        rng = self.rng
        form = rng.randrange(7)
        if form == 0:
            return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_PLURAL_NOUNS)}"
        if form == 1:
            return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        if form == 2:
            return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if form == 3:
            return f"{rng.choice(_FIRST_NAMES)} & the {rng.choice(_PLURAL_NOUNS)}"
        if form == 4:
            return f"{rng.choice(_NOUNS)} {rng.choice(_PLURAL_NOUNS)}"
        if form == 5:
            return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)} {rng.choice(('Trio', 'Quartet', 'Ensemble'))}"
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_PLURAL_NOUNS)}"

    def _album_title(self) -> str:
        rng = self.rng
        form = rng.randrange(9)
        if form == 0:
            return f"{rng.choice(_ADJECTIVES)} {rng.choice(_PLURAL_NOUNS)}"
        if form == 1:
            return f"{rng.choice(_NOUNS)} of {rng.choice(_PLURAL_NOUNS)}"
        if form == 2:
            return f"Songs for the {rng.choice(_NOUNS)}"
        if form == 3:
            return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if form == 4:
            return f"Live at {rng.choice(_PLACES)}"
        if form == 5:
            return f"The {rng.choice(_NOUNS)} Sessions"
        if form == 6:
            return f"{rng.choice(_NOUNS)} & {rng.choice(_NOUNS)}"
        if form == 7:
            return f"Under the {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        return rng.choice(_NOUNS) + rng.choice(("", "s", " II", " Tapes"))

    def _track_title(self) -> str:
        rng = self.rng
        form = rng.randrange(10)
        if form == 0:
            return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if form == 1:
            return f"{rng.choice(_NOUNS)} Song"
        if form == 2:
            return f"Under the {rng.choice(_NOUNS)}"
        if form == 3:
            return f"Theme for {rng.choice(_FIRST_NAMES)}"
        if form == 4:
            return f"{rng.choice(_NOUNS)} (Reprise)"
        if form == 5:
            return f"Little {rng.choice(_NOUNS)}"
        if form == 6:
            return f"Lullaby for {rng.choice(_FIRST_NAMES)}"
        if form == 7:
            return f"{rng.choice(_NOUNS)} Blues"
        if form == 8:
            return f"{rng.choice(_ADJECTIVES)} {rng.choice(_PLURAL_NOUNS)}"
        return rng.choice(_NOUNS)

    def _claim(self, artist: str | None, album: str) -> bool:
        key = lookup_key(artist, album)
        if key in self._used_keys or len(album) > 128 or (artist is not None and len(artist) > 128):
            return False
        self._used_keys.add(key)
        return True

    def _names(self) -> _Names:
        rng = self.rng
        if self._real and rng.random() < 0.1:
            artist, album, label, year, genre, known = self._real.pop()
            if self._claim(artist, album):
                return _Names(artist, album, label, year, genre, known)
        while True:
            artist, album = self._artist_name(), self._album_title()
            if self._claim(artist, album):
                return _Names(artist, album, rng.choice(_LABELS), self._year(), rng.choice(tuple(_GENRES)))

    def _va_names(self) -> _Names:
        rng = self.rng
        artist = _VA_NAMES[self._va_turn % len(_VA_NAMES)]
        self._va_turn += 1
        if self._real_comps and rng.random() < 0.5:
            album, label, year, genre = self._real_comps.pop()
            if self._claim(None, album):
                return _Names(artist, album, label, year, genre)
        while True:
            genre = rng.choice(tuple(_GENRES))
            start = rng.randint(1962, 1990)
            album = rng.choice(
                (
                    f"{rng.choice(_ADJECTIVES)} {rng.choice(_PLURAL_NOUNS)}: "
                    f"{rng.choice(_GENRES[genre])} from {rng.choice(_PLACES)} {start}-{start + rng.randint(3, 12)}",
                    f"Sounds of the {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}",
                    f"{rng.choice(_NOUNS)} Tapes, Vol. {rng.randint(1, 6)}",
                )
            )
            if self._claim(None, album):
                return _Names(artist, album, rng.choice(_LABELS), self._year(), genre)

    def _year(self) -> int:
        return max(1965, self.today.year - int(self.rng.expovariate(1 / 5)))

    # -- ids -------------------------------------------------------------------------------

    def _release_id(self, preferred: int | None = None) -> int:
        if preferred is not None and preferred not in self._used_release_ids:
            self._used_release_ids.add(preferred)
            return preferred
        while True:
            rid = self.rng.randint(1_000_000, 33_000_000)
            if rid not in self._used_release_ids:
                self._used_release_ids.add(rid)
                return rid

    def _id_for(self, table: dict[str, int], name: str, low: int, high: int) -> int:
        if name not in table:
            table[name] = self.rng.randint(low, high)
        return table[name]

    def _library_id(self) -> int:
        self._next_library_id += self.rng.randint(1, 40)
        return self._next_library_id

    # -- tracks and releases -------------------------------------------------------------

    def _tracklist(self, *, compilation: bool) -> tuple[TrackFixture, ...]:
        rng = self.rng
        count = rng.randint(4, 14)
        if rng.random() < 0.55:
            sides = 2 if count <= 10 else 4
            per_side = -(-count // sides)
            positions = [f"{'ABCD'[i // per_side]}{i % per_side + 1}" for i in range(count)]
        else:
            positions = [str(i + 1) for i in range(count)]
        no_durations = rng.random() < 0.1
        uncredited = set(rng.sample(range(count), rng.randint(1, 2))) if compilation else set()
        titles: set[str] = set()
        tracks: list[TrackFixture] = []
        for i, position in enumerate(positions):
            title = self._track_title()
            while title in titles:
                title = self._track_title()
            titles.add(title)
            duration: str | None = None
            if not no_durations and rng.random() > 0.04:
                seconds = int(rng.triangular(95, 560, 235))
                duration = f"{seconds // 60}:{seconds % 60:02d}"
            artists: tuple[str, ...] = ()
            if compilation and i not in uncredited:
                artists = (self._artist_name(),)
            tracks.append(TrackFixture(position, title, duration, artists))
        return tuple(tracks)

    def _release(self, names: _Names, *, release_id: int | None = None, compilation: bool = False) -> ReleaseFixture:
        rng = self.rng
        rid = release_id if release_id is not None else self._release_id(names.known_release_id)
        artist = "Various" if compilation else names.artist
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        released = rng.choice((f"{names.year}-{month:02d}-{day:02d}", f"{names.year}-{month:02d}", str(names.year)))
        release = ReleaseFixture(
            release_id=rid,
            title=names.album,
            artist=artist,
            year=names.year,
            label=names.label,
            tracklist=self._tracklist(compilation=compilation),
            genres=(names.genre,),
            styles=tuple(rng.sample(_GENRES[names.genre], 2)),
            artist_id=None if compilation else self._id_for(self._artist_ids, artist, 10_000, 12_000_000),
            label_id=self._id_for(self._label_ids, names.label, 1, 3_000_000),
            catno=f"{''.join(w[0] for w in names.label.split()).upper()}{rng.randint(1, 999):03d}",
            released=released,
            artwork_url=f"https://i.discogs.com/demo/release-{rid}.jpg",
        )
        self.releases[rid] = release
        return release

    # -- LML fixtures ----------------------------------------------------------------------

    def _library_item(self, names: _Names, *, rowless: bool = False) -> LibraryItemFixture:
        rng = self.rng
        letters = re.sub(r"[^A-Za-z]", "", names.artist.removeprefix("The "))[:2].upper() or "VA"
        return LibraryItemFixture(
            id=0 if rowless else self._library_id(),
            title=names.album,
            artist=names.artist,
            label=names.label,
            call_letters=letters,
            artist_call_number=rng.randint(1, 2600),
            release_call_number=rng.randint(1, 6),
            genre=_LIBRARY_GENRE[names.genre],
            format=rng.choice(_FORMATS),
            on_streaming=rng.random() < 0.7,
        )

    def _artwork(self, names: _Names, release_id: int, *, confidence: float | None = None) -> ArtworkFixture:
        rng = self.rng
        query = quote_plus(f"{names.artist} {names.album}")
        spotify = "".join(rng.choice(_BASE62) for _ in range(22)) if rng.random() < 0.7 else None
        bandcamp = rng.random() < 0.35
        slug = re.sub(r"[^a-z0-9]+", "", names.artist.lower()) or "artist"
        status = [("spotify", "verified" if spotify else "absent"), ("apple_music", "unresolved")]
        if bandcamp:
            status.append(("bandcamp", "verified"))
        return ArtworkFixture(
            release_id=release_id,
            release_url=f"https://www.discogs.com/release/{release_id}" if release_id else "",
            album=names.album,
            artist=names.artist,
            artwork_url=f"https://i.discogs.com/demo/release-{release_id}.jpg" if release_id else None,
            confidence=confidence if confidence is not None else rng.choice((1.0, 1.0, 0.95, 0.9, 0.8)),
            release_year=names.year if release_id else None,
            master_id=rng.randint(100_000, 3_500_000) if release_id and rng.random() < 0.5 else None,
            artist_bio=(
                f"{names.artist} is a {rng.choice(_GENRES[names.genre]).lower()} act from {rng.choice(_HOMETOWNS)}."
                if release_id and rng.random() < 0.6
                else None
            ),
            spotify_url=f"https://open.spotify.com/album/{spotify}" if spotify else None,
            youtube_music_url=f"https://music.youtube.com/search?q={query}",
            bandcamp_url=f"https://{slug}.bandcamp.com/album" if bandcamp else None,
            soundcloud_url=f"https://soundcloud.com/search?q={query}",
            streaming_status=tuple(status),
        )

    def _direct(
        self,
        names: _Names,
        release_id: int,
        tracklist: tuple[TrackFixture, ...] | None,
        *,
        rowless: bool = False,
        compilation: bool = False,
    ) -> LookupFixture:
        rng = self.rng
        results = [LookupResultFixture(self._library_item(names, rowless=rowless), self._artwork(names, release_id))]
        if not rowless and rng.random() < 0.25:
            # A second shelf copy (other format) with a lower score: never gets extended fields.
            results.append(
                LookupResultFixture(self._library_item(names), self._artwork(names, release_id, confidence=0.6))
            )
        release = self.releases.get(release_id)
        return LookupFixture(
            search_type="direct",
            results=tuple(results),
            tracklist=tracklist,
            genres=(names.genre,) if release_id else None,
            styles=release.styles if release else None,
            label=release.label if release else None,
            full_release_date=release.released if release else None,
            discogs_artist_id=release.artist_id if release else None,
            artist_image_url=(
                f"https://i.discogs.com/demo/artist-{release.artist_id}.jpg" if release and release.artist_id else None
            ),
            found_on_compilation=compilation,
        )

    def _add_lookup(self, artist: str | None, album: str, fixture: LookupFixture) -> None:
        self.lookups[lookup_key(artist, album)] = fixture

    # -- rows --------------------------------------------------------------------------------

    def _dates(self, state: str) -> tuple[datetime.date, datetime.date | None]:
        rng, today = self.rng, self.today
        day = datetime.timedelta(days=1)
        if state == "killed":
            added = today - rng.randint(60, 400) * day
            return added, min(added + rng.randint(30, 120) * day, today - day)
        if state == "killed_today":
            return today - rng.randint(30, 180) * day, today
        added = today - rng.randint(0, 180) * day
        if state == "future_kill":
            return added, today + rng.randint(1, 45) * day
        return added, None

    def _stamp(self, days_ago: int) -> datetime.datetime:
        day = self.today - datetime.timedelta(days=days_ago)
        return datetime.datetime.combine(day, datetime.time(12, 0), tzinfo=datetime.timezone.utc)

    def _link(self, names: _Names, add_date: datetime.date, identity: IdentityFixture | None) -> int:
        rng = self.rng
        album_added = add_date - datetime.timedelta(days=rng.randint(0, 30))
        artist = names.artist
        genre = _LIBRARY_GENRE[names.genre]
        code = self._artist_codes.setdefault((artist, genre), len(self._artist_codes) + rng.randint(1, 40))
        if artist not in self._artist_ids_by_name:
            self._artist_ids_by_name[artist] = self._external_ids(artist)
        self.albums.append(
            LibraryAlbum(
                artist_name=artist,
                album_title=names.album,
                label=names.label,
                add_date=album_added,
                identity=identity,
                genre=genre,
                format=rng.choice(_FORMATS),
                code_letters=_code_letters(artist),
                alphabetical_name=_alphabetical(artist),
                artist_genre_code=code,
                code_number=rng.randint(1, 12),
                plays=int(rng.expovariate(1 / 40)),
                artist_ids=self._artist_ids_by_name[artist],
            )
        )
        return len(self.albums) - 1

    def _external_ids(self, artist: str) -> ArtistIds | None:
        """Some artists carry reconciled external ids (the list's ``reconciled_identity``)."""
        rng = self.rng
        if is_various_artists_name(artist) or rng.random() < 0.5:
            return None
        return ArtistIds(
            discogs_artist_id=self._id_for(self._artist_ids, artist, 10_000, 12_000_000),
            musicbrainz_artist_id=f"{rng.getrandbits(128):032x}" if rng.random() < 0.6 else None,
            wikidata_qid=f"Q{rng.randint(1000, 99_999_999)}" if rng.random() < 0.4 else None,
            spotify_artist_id="".join(rng.choice(_BASE62) for _ in range(22)) if rng.random() < 0.5 else None,
        )

    def duplicates(self) -> None:
        """Rows that make the rotation list collapse (or not), as upstream's DISTINCT ON does.

        - ``linked``: a second, older row for the same album and bin: the list shows the newest.
        - ``unlinked_case``: an unlinked row repeated in upper case: same group (the key lowercases).
        - ``unlinked_spacing``: repeated with a doubled space: a different group (the key does not
          collapse whitespace), so both show.
        - ``other_bin``: the same album in another bin: one entry per bin.
        Each copy keeps the original's outcome (tier-3 copies share its LML lookup).
        """
        active = [r for r in self.rows if r.is_active(self.today) and r.kill_date is None and r.artist_name]
        linked = [r for r in active if r.album_index is not None and r.expected in (LML_INLINE, TIER2)]
        unlinked = [r for r in active if r.album_index is None and r.expected in (LML_INLINE, LML_RELEASE, TIER1)]
        day = datetime.timedelta(days=1)
        bins = [b for b, _ in _BIN_WEIGHTS]
        original = self.rng.choice(linked)
        self.rows.append(replace(original, add_date=original.add_date - 3 * day, duplicate="linked"))
        original = self.rng.choice(unlinked)
        upper = replace(
            original,
            artist_name=(original.artist_name or "").upper(),
            album_title=(original.album_title or "").upper(),
            add_date=original.add_date - day,
            duplicate="unlinked_case",
        )
        self.rows.append(upper)
        original = self.rng.choice([r for r in unlinked if r is not original and " " in (r.album_title or "")])
        spaced = (original.album_title or "").replace(" ", "  ", 1)
        self.rows.append(
            replace(original, album_title=spaced, add_date=original.add_date - day, duplicate="unlinked_spacing")
        )
        original = self.rng.choice([r for r in linked if r.duplicate is None])
        other = bins[(bins.index(original.rotation_bin) + 1) % len(bins)]
        self.rows.append(replace(original, rotation_bin=other, duplicate="other_bin"))

    def row(self, spec: _RowSpec) -> None:
        """Generate one rotation row (plus its library album and LML fixtures) from ``spec``."""
        rng = self.rng
        kind, flavor = spec.kind, spec.flavor
        add_date, kill_date = self._dates(spec.state)
        bin_ = rng.choices([b for b, _ in _BIN_WEIGHTS], weights=[w for _, w in _BIN_WEIGHTS])[0]
        if kind == NO_TEXT:
            names = self._names()
            artist: str | None = names.artist
            album: str | None = names.album
            if flavor == "artist_null":
                artist = None
            elif flavor == "artist_empty":
                artist = ""
            else:
                album = None
            self.rows.append(RotationRow(artist, album, names.label, bin_, add_date, kill_date, kind))
            return
        names = self._va_names() if kind == VARIOUS_ARTISTS else self._names()
        release_id: int | None = None
        album_index: int | None = None
        stamp: datetime.datetime | None = None
        link = rng.random() < 0.6
        identity: IdentityFixture | None = None

        if kind == TIER1:
            release_id = self._release(names).release_id
            link = rng.random() < 0.5
            if link and rng.random() < 0.3:
                identity = IdentityFixture(release_id, "tubafrenzy_paste", 1.0)
            if flavor == "fresh_stamp":
                stamp = self._stamp(2)
        elif kind == TIER2:
            link = True
            rid = self._release(names).release_id
            method = rng.choice(("manual", "lml_offline_backfill", "discogs_direct_backfill", "md_verified"))
            identity = IdentityFixture(rid, method, rng.choice((1.0, 0.97, 0.92)))
        elif kind == TIER1_AND_TIER2:
            link = True
            release_id = self._release(names).release_id
            identity = IdentityFixture(self._release(names, release_id=self._release_id()).release_id, "manual")
        elif kind in (TIER2_NULL_IDENTITY, LML_INLINE):
            if kind == TIER2_NULL_IDENTITY:
                link = True
                identity = IdentityFixture(None, "lml_unresolved", 0.0)
            release = self._release(names)
            self._add_lookup(names.artist, names.album, self._direct(names, release.release_id, release.tracklist))
            if flavor == "stale_stamp":
                stamp = self._stamp(30)
        elif kind == LML_RELEASE:
            shared = self._shareable and rng.random() < 0.2
            if shared:
                base, rid = rng.choice(self._shareable)
                album_title = base.album + rng.choice(_EDITION_SUFFIXES)
                if self._claim(base.artist, album_title):
                    names = _Names(base.artist, album_title, base.label, base.year, base.genre)
                    fixture = self._direct(base, rid, None)
                    self._add_lookup(names.artist, names.album, fixture)
                else:
                    shared = False
            if not shared:
                rid = self._release(names).release_id
                self._shareable.append((names, rid))
                self._add_lookup(names.artist, names.album, self._direct(names, rid, None))
        elif kind == RELEASE_404:
            missing = self._release_id()
            if flavor == "tier1":
                release_id = missing
            else:
                self._add_lookup(names.artist, names.album, self._direct(names, missing, None))
        elif kind == MB_RESCUE:
            tracks = self._tracklist(compilation=False)
            self._add_lookup(names.artist, names.album, self._direct(names, 0, tracks, rowless=flavor == "rowless"))
        elif kind == SENTINEL_NO_TRACKS:
            self._add_lookup(names.artist, names.album, self._direct(names, 0, None))
        elif kind == FALLBACK:
            results: list[LookupResultFixture] = []
            for _ in range(rng.randint(1, 2)):
                other = _Names(names.artist, self._album_title(), names.label, self._year(), names.genre)
                other_release = self._release(other)
                results.append(
                    LookupResultFixture(
                        self._library_item(other),
                        self._artwork(other, other_release.release_id, confidence=rng.choice((0.5, 0.6, 0.7))),
                    )
                )
            fixture = LookupFixture(
                search_type="fallback",
                results=tuple(results),
                song_not_found=True,
                context_message=f'"{names.album}" by {names.artist} not found in library.',
            )
            self._add_lookup(names.artist, names.album, fixture)
        elif kind == NO_MATCH:
            if flavor == "explicit":
                fixture = LookupFixture(search_type=rng.choice(("direct", "alternative")))
                self._add_lookup(names.artist, names.album, fixture)
        elif kind == VARIOUS_ARTISTS:
            release = self._release(names, compilation=True)
            va = _Names("Various Artists", names.album, names.label, names.year, names.genre)
            inline = release.tracklist if flavor == "inline" else None
            self._add_lookup(None, names.album, self._direct(va, release.release_id, inline, compilation=True))
        elif kind == STAMP_FRESH:
            stamp = self._stamp(2)
        elif kind == LML_TIMEOUT:
            self._add_lookup(names.artist, names.album, LookupFixture(search_type=flavor, timeout=True))
        elif kind == LML_DEGRADED:
            fixture = LookupFixture(search_type="direct", degraded=True, degraded_reason="upstream_unavailable")
            self._add_lookup(names.artist, names.album, fixture)
        else:  # pragma: no cover - the plan only names known kinds
            raise ValueError(f"unknown demo outcome {kind!r}")

        if link:
            album_index = self._link(names, add_date, identity)
        self.rows.append(
            RotationRow(
                artist_name=names.artist,
                album_title=names.album,
                record_label=names.label,
                rotation_bin=bin_,
                add_date=add_date,
                kill_date=kill_date,
                expected=kind,
                discogs_release_id=release_id,
                album_index=album_index,
                tracklist_lookup_attempted_at=stamp,
            )
        )

    def extra_albums(self, count: int) -> None:
        """Add library albums that are not in rotation (some with a tier-2 identity)."""
        for _ in range(count):
            names = self._names()
            identity = None
            if self.rng.random() < 0.5:
                identity = IdentityFixture(self._release(names).release_id, "discogs_direct_backfill", 0.95)
            self._link(names, self.today - datetime.timedelta(days=self.rng.randint(30, 900)), identity)


_FLAVORS: Mapping[str, tuple[str, ...]] = {
    TIER1: ("fresh_stamp",),
    LML_INLINE: ("stale_stamp", "stale_stamp"),
    RELEASE_404: ("tier1",),
    MB_RESCUE: ("rowless",),
    NO_MATCH: ("explicit",) * 7,
    VARIOUS_ARTISTS: ("release",) * 3 + ("inline",) * 7,
    NO_TEXT: ("artist_null", "artist_null", "album_null", "album_null", "artist_empty"),
    LML_TIMEOUT: ("direct", "none"),
}


@dataclass(frozen=True)
class _Size:
    """How many rows of each kind a catalog has."""

    active: tuple[tuple[str, int], ...]
    flavors: Mapping[str, tuple[str, ...]]
    killed: int
    killed_today: int
    future_kill: int
    extra_albums: int


SIZES: Mapping[str, _Size] = {
    # ~310 active rows, like production: the demo, the benchmarks and the integration tests.
    "full": _Size(_ACTIVE_PLAN, _FLAVORS, _KILLED_PAST, _KILLED_TODAY, _FUTURE_KILL, _EXTRA_LIBRARY_ALBUMS),
    # ~35 active rows that still cover every outcome and flavour: the end-to-end tests.
    "small": _Size(
        (
            (TIER1, 2),
            (TIER2, 2),
            (TIER1_AND_TIER2, 1),
            (TIER2_NULL_IDENTITY, 1),
            (LML_INLINE, 6),
            (LML_RELEASE, 4),
            (RELEASE_404, 2),
            (MB_RESCUE, 2),
            (SENTINEL_NO_TRACKS, 1),
            (FALLBACK, 1),
            (NO_MATCH, 2),
            (VARIOUS_ARTISTS, 2),
            (NO_TEXT, 2),
            (STAMP_FRESH, 1),
            (LML_TIMEOUT, 2),
            (LML_DEGRADED, 1),
        ),
        {
            TIER1: ("fresh_stamp",),
            LML_INLINE: ("stale_stamp",),
            RELEASE_404: ("tier1", "lml"),
            MB_RESCUE: ("rowless", ""),
            NO_MATCH: ("explicit", ""),
            VARIOUS_ARTISTS: ("release", "inline"),
            NO_TEXT: ("artist_null", "album_null"),
            LML_TIMEOUT: ("direct", "none"),
        },
        killed=4,
        killed_today=1,
        future_kill=1,
        extra_albums=3,
    ),  # fmt: skip
}


def _plan(rng: random.Random, size: _Size) -> list[_RowSpec]:
    specs: list[_RowSpec] = []
    for kind, count in size.active:
        flavors = size.flavors.get(kind, ())
        default = "inline" if kind == VARIOUS_ARTISTS else ("lml" if kind == RELEASE_404 else "")
        for i in range(count):
            specs.append(_RowSpec(kind, "active", flavors[i] if i < len(flavors) else default))
    eligible = [i for i, s in enumerate(specs) if s.kind in (LML_INLINE, LML_RELEASE, TIER1, TIER2) and not s.flavor]
    for i in rng.sample(eligible, size.future_kill):
        specs[i] = _RowSpec(specs[i].kind, "future_kill", specs[i].flavor)
    for state, count in (("killed", size.killed), ("killed_today", size.killed_today)):
        for _ in range(count):
            kind = rng.choice(_KILLED_KINDS)
            specs.append(_RowSpec(kind, state, "inline" if kind == VARIOUS_ARTISTS else ""))
    rng.shuffle(specs)
    return specs


def build_demo_catalog(today: datetime.date, size: str = "full") -> DemoCatalog:
    """Build the deterministic demo catalog for ``today``.

    The same ``today`` and ``size`` always yield an equal catalog (a private ``random.Random``
    with a fixed seed drives every choice); dates and stamps are relative to ``today``.

    Args:
        today: The date the active/killed split and the relative dates are computed from.
        size: ``"full"`` (~310 active rows) or ``"small"`` (~35, every outcome still covered).

    Returns:
        The catalog: rotation rows (plus list duplicates), their library albums and the LML
        lookup/release fixtures that make each row produce its ``expected`` outcome.
    """
    plan = SIZES[size]
    builder = _Builder(today)
    for spec in _plan(builder.rng, plan):
        builder.row(spec)
    builder.duplicates()
    builder.extra_albums(plan.extra_albums)
    return DemoCatalog(
        today=today,
        albums=tuple(builder.albums),
        rotation=tuple(builder.rows),
        lookups=dict(builder.lookups),
        releases=dict(builder.releases),
    )
