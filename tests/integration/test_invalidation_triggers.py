"""The PostgreSQL triggers behind invalidation: who gets notified, and when the stamp is cleared."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from backend.services.invalidation import CHANNEL

pytestmark = pytest.mark.pg


async def listen(database_url: str) -> tuple[asyncpg.Connection, asyncio.Queue[Any]]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(CHANNEL, lambda *args: queue.put_nowait(json.loads(args[3])))
    return conn, queue


async def drain(queue: asyncio.Queue[Any], wait_s: float = 0.3) -> list[Any]:
    await asyncio.sleep(wait_s)
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


class TestTriggers:
    async def test_each_change_that_alters_an_answer_notifies_the_row(
        self, db: asyncpg.Connection, database_url: str
    ) -> None:
        """Insert, text, label, link, release id and delete notify; kill dates and our own stamp do not."""
        listener, queue = await listen(database_url)
        try:
            album = await db.fetchval("INSERT INTO wxyc_schema.library (album_title) VALUES ('X') RETURNING id")
            rid = await db.fetchval(
                "INSERT INTO wxyc_schema.rotation (rotation_bin, artist_name, album_title) VALUES ('H', 'A', 'B')"
                " RETURNING id"
            )
            assert await drain(queue) == [{"rotation_ids": [rid]}]
            for sql in (
                "UPDATE wxyc_schema.rotation SET artist_name = 'A2' WHERE id = $1",
                "UPDATE wxyc_schema.rotation SET record_label = 'L' WHERE id = $1",
                f"UPDATE wxyc_schema.rotation SET album_id = {album} WHERE id = $1",
                "UPDATE wxyc_schema.rotation SET discogs_release_id = 42 WHERE id = $1",
            ):
                await db.execute(sql, rid)
                assert await drain(queue) == [{"rotation_ids": [rid]}], sql
            for sql in (
                "UPDATE wxyc_schema.rotation SET kill_date = CURRENT_DATE + 3 WHERE id = $1",
                "UPDATE wxyc_schema.rotation SET tracklist_lookup_attempted_at = now() WHERE id = $1",
            ):
                await db.execute(sql, rid)
                assert await drain(queue) == [], sql
            await db.execute("UPDATE wxyc_schema.rotation SET tracklist_lookup_attempted_at = NULL WHERE id = $1", rid)
            assert await drain(queue) == [{"rotation_ids": [rid]}], "clearing a stamp by hand forces a retry"
            await db.execute("DELETE FROM wxyc_schema.rotation WHERE id = $1", rid)
            assert await drain(queue) == [{"rotation_ids": [rid]}]
        finally:
            await listener.close()

    async def test_identity_changes_notify_every_linked_row(self, db: asyncpg.Connection, database_url: str) -> None:
        """A library identity's release id change notifies each rotation row linked to that album."""
        album = await db.fetchval("INSERT INTO wxyc_schema.library (album_title) VALUES ('X') RETURNING id")
        first = await db.fetchval(
            "INSERT INTO wxyc_schema.rotation (rotation_bin, album_id) VALUES ('H', $1) RETURNING id", album
        )
        second = await db.fetchval(
            "INSERT INTO wxyc_schema.rotation (rotation_bin, album_id) VALUES ('S', $1) RETURNING id", album
        )
        listener, queue = await listen(database_url)
        try:
            await db.execute("INSERT INTO wxyc_schema.library_identity (library_id) VALUES ($1)", album)
            assert [sorted(n["rotation_ids"]) for n in await drain(queue)] == [sorted([first, second])]
            await db.execute("UPDATE wxyc_schema.library_identity SET confidence = 0.5 WHERE library_id = $1", album)
            assert await drain(queue) == []
            await db.execute(
                "UPDATE wxyc_schema.library_identity SET discogs_release_id = 9 WHERE library_id = $1", album
            )
            assert [sorted(n["rotation_ids"]) for n in await drain(queue)] == [sorted([first, second])]
        finally:
            await listener.close()

    async def test_text_change_clears_the_negative_stamp(self, db: asyncpg.Connection) -> None:
        """A corrected artist or album gets a fresh LML attempt; other edits keep the stamp."""
        rid = await db.fetchval(
            "INSERT INTO wxyc_schema.rotation (rotation_bin, artist_name, album_title, tracklist_lookup_attempted_at)"
            " VALUES ('H', 'A', 'B', now()) RETURNING id"
        )
        stamp = "SELECT tracklist_lookup_attempted_at FROM wxyc_schema.rotation WHERE id = $1"
        await db.execute("UPDATE wxyc_schema.rotation SET kill_date = CURRENT_DATE + 1 WHERE id = $1", rid)
        assert await db.fetchval(stamp, rid) is not None
        await db.execute("UPDATE wxyc_schema.rotation SET album_title = 'B (Deluxe)' WHERE id = $1", rid)
        assert await db.fetchval(stamp, rid) is None

    async def test_huge_fan_out_degrades_to_drop_everything(self, db: asyncpg.Connection, database_url: str) -> None:
        """More linked rows than fit a NOTIFY payload: listeners are told to drop everything instead."""
        album = await db.fetchval("INSERT INTO wxyc_schema.library (album_title) VALUES ('X') RETURNING id")
        await db.execute(
            "INSERT INTO wxyc_schema.rotation (rotation_bin, album_id) SELECT 'M', $1 FROM generate_series(1, 2000)",
            album,
        )
        listener, queue = await listen(database_url)
        try:
            await db.execute(
                "INSERT INTO wxyc_schema.library_identity (library_id, discogs_release_id) VALUES ($1, 3)", album
            )
            assert await drain(queue) == [{"all": True}]
        finally:
            await listener.close()
