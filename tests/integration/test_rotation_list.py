"""GET /library/rotation answers what upstream answers (station.md §2), on the station fixture."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from backend.context import App
from devtools.demo_catalog import DemoCatalog
from tests.helpers import insert_album, insert_rotation

pytestmark = pytest.mark.pg

MakeApp = Callable[..., App]

FIELDS = {
    "id",
    "code_letters",
    "code_artist_number",
    "code_number",
    "artist_name",
    "alphabetical_name",
    "album_title",
    "record_label",
    "label_id",
    "genre_name",
    "format_name",
    "rotation_id",
    "add_date",
    "rotation_add_date",
    "rotation_bin",
    "rotation_kill_date",
    "plays",
    "legacy_release_id",
    "reconciled_identity",
}


async def rotation_list(app: App, headers: dict[str, str]) -> list[dict[str, Any]]:
    _, response = await app.asgi_client.get("/library/rotation", headers=headers)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json
    return body


class TestCollapse:
    async def test_one_entry_per_album_and_bin_newest_row_wins(
        self, make_app: MakeApp, db: asyncpg.Connection, dj_headers: dict[str, str]
    ) -> None:
        """Two active rows for one album in one bin show once (the newer); another bin is its own entry."""
        album = await insert_album(db, title="Confield", artist="Autechre")
        d = dt.date(2026, 6, 1)
        older = await insert_rotation(db, album_id=album, rotation_bin="H", add_date=d)
        newer = await insert_rotation(db, album_id=album, rotation_bin="H", add_date=d + dt.timedelta(days=3))
        other_bin = await insert_rotation(db, album_id=album, rotation_bin="L", add_date=d)
        body = await rotation_list(make_app(), dj_headers)
        assert sorted(r["rotation_id"] for r in body) == sorted([newer, other_bin])
        assert older not in {r["rotation_id"] for r in body}

    async def test_equal_dates_keep_the_lowest_rotation_id(
        self, make_app: MakeApp, db: asyncpg.Connection, dj_headers: dict[str, str]
    ) -> None:
        """Within a group with the same add date the lowest rotation id wins."""
        album = await insert_album(db)
        first = await insert_rotation(db, album_id=album, add_date=dt.date(2026, 6, 1))
        await insert_rotation(db, album_id=album, add_date=dt.date(2026, 6, 1))
        assert [r["rotation_id"] for r in await rotation_list(make_app(), dj_headers)] == [first]

    async def test_unlinked_duplicates_collapse_ignoring_case_but_not_spacing(
        self, make_app: MakeApp, db: asyncpg.Connection, dj_headers: dict[str, str]
    ) -> None:
        """Unlinked rows group by lower(artist)|lower(album): case differences collapse, extra spaces do not."""
        d = dt.date(2026, 6, 1)
        kept = await insert_rotation(db, artist_name="Stereolab", album_title="Dots and Loops", add_date=d)
        await insert_rotation(db, artist_name="STEREOLAB", album_title="dots and loops", add_date=d)
        spaced = await insert_rotation(db, artist_name="Stereolab", album_title="Dots  and Loops", add_date=d)
        body = await rotation_list(make_app(), dj_headers)
        assert sorted(r["rotation_id"] for r in body) == sorted([kept, spaced])
        assert all(r["id"] is None for r in body)

    async def test_killed_rows_are_not_listed(
        self, make_app: MakeApp, db: asyncpg.Connection, dj_headers: dict[str, str]
    ) -> None:
        """A kill date today or earlier hides the row; a future kill date does not."""
        today: dt.date = await db.fetchval("SELECT CURRENT_DATE")
        await insert_rotation(db, album_title="gone", kill_date=today)
        future = await insert_rotation(db, album_title="soon", kill_date=today + dt.timedelta(days=2))
        assert [r["rotation_id"] for r in await rotation_list(make_app(), dj_headers)] == [future]


class TestFields:
    async def test_a_linked_row_carries_the_library_fields(
        self, make_app: MakeApp, db: asyncpg.Connection, dj_headers: dict[str, str]
    ) -> None:
        """Library, artist, genre, format and crossreference fields, upstream's names and sources."""
        album = await insert_album(db, title="Library Title", artist="Library Artist", genre="Jazz", format_name="LP")
        ids = await db.fetchrow("SELECT artist_id, genre_id FROM wxyc_schema.library WHERE id = $1", album)
        assert ids is not None
        artist_id, genre_id = ids
        await db.execute(
            "INSERT INTO wxyc_schema.genre_artist_crossreference (artist_id, genre_id, artist_genre_code)"
            " VALUES ($1, $2, 42)",
            artist_id,
            genre_id,
        )
        await db.execute(
            "UPDATE wxyc_schema.artists SET code_letters = 'LA', alphabetical_name = 'Artist, Library',"
            " wikidata_qid = 'Q1' WHERE id = $1",
            artist_id,
        )
        await db.execute("UPDATE wxyc_schema.library SET plays = 7, label = 'Label X' WHERE id = $1", album)
        rid = await insert_rotation(
            db, album_id=album, artist_name="Snapshot", album_title="Snapshot Title", rotation_bin="M"
        )
        [entry] = await rotation_list(make_app(), dj_headers)
        library = await db.fetchrow("SELECT add_date, legacy_release_id FROM wxyc_schema.library WHERE id = $1", album)
        assert library is not None
        rotation_add = await db.fetchval("SELECT add_date FROM wxyc_schema.rotation WHERE id = $1", rid)
        assert set(entry) == FIELDS
        assert entry == {
            "id": album,
            "code_letters": "LA",
            "code_artist_number": 42,
            "code_number": 1,
            "artist_name": "Library Artist",
            "alphabetical_name": "Artist, Library",
            "album_title": "Library Title",
            "record_label": "Label X",
            "label_id": None,
            "genre_name": "Jazz",
            "format_name": "LP",
            "rotation_id": rid,
            "add_date": library["add_date"]
            .astimezone(dt.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "rotation_add_date": rotation_add.isoformat(),
            "rotation_bin": "M",
            "rotation_kill_date": None,
            "plays": 7,
            "legacy_release_id": library["legacy_release_id"],
            "reconciled_identity": {
                "discogs_artist_id": None,
                "musicbrainz_artist_id": None,
                "wikidata_qid": "Q1",
                "spotify_artist_id": None,
                "apple_music_artist_id": None,
                "bandcamp_id": None,
            },
        }

    async def test_an_unlinked_row_falls_back_to_its_snapshot(
        self, make_app: MakeApp, db: asyncpg.Connection, dj_headers: dict[str, str]
    ) -> None:
        """No library row: id and library fields are null, names come from the rotation snapshot."""
        rid = await insert_rotation(
            db, artist_name="Duster", album_title="Stratosphere", record_label="Up", kill_date=None
        )
        [entry] = await rotation_list(make_app(), dj_headers)
        assert set(entry) == FIELDS
        assert entry["rotation_id"] == rid and entry["id"] is None
        assert (entry["artist_name"], entry["alphabetical_name"], entry["album_title"], entry["record_label"]) == (
            "Duster",
            "Duster",
            "Stratosphere",
            "Up",
        )
        nulls = ("code_letters", "code_artist_number", "code_number", "label_id", "genre_name", "format_name",
                 "add_date", "plays", "legacy_release_id", "reconciled_identity")  # fmt: skip
        assert all(entry[name] is None for name in nulls)


class TestOrderAndScale:
    async def test_the_demo_catalog_lists_every_active_album_bin_once_in_upstream_order(
        self, make_app: MakeApp, seeded: asyncpg.Connection, catalog: DemoCatalog, dj_headers: dict[str, str]
    ) -> None:
        """The demo's list duplicates collapse as designed and the order is upstream's (group key, bin, date)."""
        body = await rotation_list(make_app(), dj_headers)
        listed = {r["rotation_id"] for r in body}
        by_kind = {r.duplicate: i + 1 for i, r in enumerate(catalog.rotation) if r.duplicate}
        assert by_kind["linked"] not in listed and by_kind["unlinked_case"] not in listed
        assert by_kind["unlinked_spacing"] in listed and by_kind["other_bin"] in listed
        assert len(body) == len(catalog.active_rows()) - 2
        keys = await seeded.fetch(
            """SELECT r.id, COALESCE(r.album_id::bigint, -(abs(hashtext(lower(coalesce(r.artist_name, '')) || '|' ||
                      lower(coalesce(r.album_title, '')))::bigint) + 1)) AS k, r.rotation_bin::text AS bin
               FROM wxyc_schema.rotation r"""
        )
        group = {r["id"]: (r["k"], "SLMH".index(r["bin"])) for r in keys}
        order = [group[r["rotation_id"]] for r in body]
        assert order == sorted(order)
