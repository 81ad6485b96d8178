"""Stored answers on real PostgreSQL: conditional writes, loading, retry schedules, purging, the fleet LML budget."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from backend.context import App
from backend.db.answers import AnswerStore
from backend.db.rotation import RotationRepository
from devtools import demo_catalog as dc
from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from tests.conftest import SCHEMAS
from tests.helpers import insert_album, insert_rotation, row_id

pytestmark = pytest.mark.pg

MakeApp = Callable[..., App]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=0, max_size=4)
    assert created is not None
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> AnswerStore:
    return AnswerStore(pool, SCHEMAS)


@pytest.fixture
def repo(pool: asyncpg.Pool) -> RotationRepository:
    return RotationRepository(pool, SCHEMAS)


async def inputs_of(repo: RotationRepository, rotation_id: int) -> str:
    return (await repo.current_inputs([rotation_id]))[rotation_id]


class TestConditionalWrites:
    async def test_an_answer_is_stored_only_with_the_rows_current_inputs(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """Inputs read before a change no longer match: the write stores nothing and says so."""
        rid = await insert_rotation(db, artist_name="A", album_title="B")
        before = await inputs_of(repo, rid)
        await db.execute("UPDATE wxyc_schema.rotation SET discogs_release_id = 99 WHERE id = $1", rid)
        kept = await store.save_row(rid, inputs=before, outcome="lml_positive", release_id=5, tracks=None, ttl_s=60)
        assert kept is None
        assert (await store.load()).rows == []
        now = await inputs_of(repo, rid)
        assert await store.save_row(rid, inputs=now, outcome="tier1", release_id=99, tracks=None, ttl_s=60)

    async def test_an_identity_change_invalidates_a_stored_answer(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """A tier-2 change in library_identity (which the station publishes nowhere) makes the answer unloadable."""
        album = await insert_album(db, identity_release_id=5)
        rid = await insert_rotation(db, album_id=album)
        await store.save_row(
            rid, inputs=await inputs_of(repo, rid), outcome="tier2", release_id=5, tracks=None, ttl_s=60
        )
        assert [r.rotation_id for r in (await store.load()).rows] == [rid]
        await db.execute("UPDATE wxyc_schema.library_identity SET discogs_release_id = 6 WHERE library_id = $1", album)
        assert (await store.load()).rows == []

    async def test_load_continues_from_the_last_sequence(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """A second load after the first returns only what was written since."""
        first = await insert_rotation(db, album_title="1")
        second = await insert_rotation(db, album_title="2")
        await store.save_row(
            first, inputs=await inputs_of(repo, first), outcome="no_text", release_id=None, tracks=None, ttl_s=60
        )
        loaded = await store.load()
        await store.save_row(
            second, inputs=await inputs_of(repo, second), outcome="no_text", release_id=None, tracks=None, ttl_s=60
        )
        await store.save_release(7, '[{"position":"1"}]', 60)
        newer = await store.load(loaded.last_seq)
        assert [r.rotation_id for r in newer.rows] == [second] and [r.release_id for r in newer.releases] == [7]
        assert newer.last_seq > loaded.last_seq

    async def test_expired_answers_are_not_loaded(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """An answer past its expiry is neither loaded nor counted as valid by the walk."""
        rid = await insert_rotation(db)
        await store.save_row(
            rid, inputs=await inputs_of(repo, rid), outcome="no_text", release_id=None, tracks=None, ttl_s=60
        )
        await db.execute("UPDATE rotation_picker.row_answer SET expires_at = now() - interval '1 second'")
        assert (await store.load()).rows == []
        assert await repo.due_rows(refresh_before=dt.datetime.now(dt.timezone.utc)) == [rid]


class TestRetrySchedule:
    async def test_retries_back_off_and_are_due_only_when_their_time_comes(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """Each failed attempt doubles the wait up to the cap; a retry is never loaded as an answer."""
        rid = await insert_rotation(db, artist_name="A", album_title="B")
        inputs = await inputs_of(repo, rid)
        waits = [await store.save_row_retry(rid, inputs, first_s=5, max_s=30) for _ in range(5)]
        assert [round(w or 0) for w in waits] == [5, 10, 20, 30, 30]
        assert (await store.load()).rows == []
        far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        assert await repo.due_rows(refresh_before=far) == [], "a scheduled retry is not due before its time"
        schedule = await store.retry_schedule()
        assert schedule.pending == 1 and schedule.next_in_s is not None and 25 < schedule.next_in_s <= 30
        await db.execute("UPDATE rotation_picker.row_answer SET expires_at = now() - interval '1 second'")
        assert await repo.due_rows(refresh_before=far, retries_only=True) == [rid]

    async def test_a_retry_never_replaces_a_valid_answer(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """A failed refresh leaves the answer that is still valid in place (it keeps being served)."""
        rid = await insert_rotation(db)
        inputs = await inputs_of(repo, rid)
        await store.save_row(rid, inputs=inputs, outcome="tier1", release_id=5, tracks=None, ttl_s=600)
        assert await store.save_row_retry(rid, inputs, first_s=5, max_s=30) is None
        assert [(r.outcome, r.release_id) for r in (await store.load()).rows] == [("tier1", 5)]

    async def test_release_retries_and_due_releases(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """A row's release that was never stored is due; a failed fetch schedules it; a 404 is not refetched."""
        rid = await insert_rotation(db)
        inputs = await inputs_of(repo, rid)
        await store.save_row(rid, inputs=inputs, outcome="tier1", release_id=5, tracks=None, ttl_s=600)
        now = dt.datetime.now(dt.timezone.utc)
        assert await store.due_releases(now) == [5]
        await store.save_release_retry(5, first_s=5, max_s=30)
        assert await store.due_releases(now) == [] and (await store.retry_schedule()).pending == 1
        await store.save_release(5, None, 600)
        assert await store.due_releases(now + dt.timedelta(hours=1)) == []


class TestPurge:
    async def test_answers_of_rows_out_of_rotation_are_deleted(
        self, db: asyncpg.Connection, store: AnswerStore, repo: RotationRepository
    ) -> None:
        """Killed and deleted rows lose their stored answers; the size reported shrinks accordingly."""
        keep, kill, gone = [await insert_rotation(db, album_title=t) for t in ("k", "x", "g")]
        for rid in (keep, kill, gone):
            await store.save_row(
                rid, inputs=await inputs_of(repo, rid), outcome="no_text", release_id=None, tracks=None, ttl_s=60
            )
        await db.execute("UPDATE wxyc_schema.rotation SET kill_date = CURRENT_DATE WHERE id = $1", kill)
        await db.execute("DELETE FROM wxyc_schema.rotation WHERE id = $1", gone)
        assert (await store.size()).rows == 3
        assert (await store.purge())[0] == 2
        assert [r.rotation_id for r in (await store.load()).rows] == [keep] and (await store.size()).rows == 1


class TestFleetBudget:
    async def test_the_bucket_holds_the_rate_and_refills_continuously(self, db: asyncpg.Connection) -> None:
        """Capacity is the rate; once empty the next token is 60/rate seconds away, less what refilled while
        the tokens were taken (the refill is continuous)."""
        take = "SELECT rotation_picker.take_lml_token($1, $2)"
        started = time.monotonic()
        taken = [await db.fetchval(take, 30.0, 0.0) for _ in range(30)]
        assert taken == [0.0] * 30
        wait = await db.fetchval(take, 30.0, 0.0)
        elapsed = time.monotonic() - started  # at least the database's own time between the first and last take
        assert 2.0 - elapsed <= wait <= 2.0

    async def test_warm_callers_leave_the_reserve_to_live_ones(self, db: asyncpg.Connection) -> None:
        """With the reserve kept, a warm caller stops while live callers can still take the last tokens."""
        take = "SELECT rotation_picker.take_lml_token($1, $2)"
        warm = [await db.fetchval(take, 10.0, 3.0) for _ in range(8)]
        assert warm.count(0.0) == 7 and warm[-1] > 0
        assert [await db.fetchval(take, 10.0, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]

    async def test_concurrent_hosts_never_take_more_than_the_bucket_holds(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """Twenty connections racing for tokens get exactly the capacity between them."""
        connections = [await asyncpg.connect(database_url) for _ in range(20)]

        async def take_twice(conn: asyncpg.Connection) -> list[float]:
            return [await conn.fetchval("SELECT rotation_picker.take_lml_token(10, 0)") for _ in range(2)]

        try:
            results = [r for pair in await asyncio.gather(*(take_twice(c) for c in connections)) for r in pair]
        finally:
            await asyncio.gather(*(c.close() for c in connections))
        assert sum(1 for r in results if r == 0) == 10


class TestFreshness:
    async def test_a_change_during_the_lookup_is_never_served_afterwards(
        self,
        make_app: MakeApp,
        seeded: asyncpg.Connection,
        catalog: DemoCatalog,
        lml_fake: LmlFake,
        dj_headers: dict[str, str],
    ) -> None:
        """Issue 9: a release id set in SQL while LML is slow to answer wins on every later open.

        The open that raced the change answers what LML said; nothing computed from the old inputs
        is stored, so the next 22 opens serve the new tier-1 release (main served the old one for 24 h).
        """
        rid = row_id(catalog, dc.LML_INLINE)
        tier1 = catalog.rotation[row_id(catalog, dc.TIER1) - 1].discogs_release_id
        assert tier1 is not None
        release = catalog.releases[tier1]
        app = make_app()
        lml_fake.set_latency(1500.0, 0.0)
        path = f"/library/rotation/{rid}/tracks"
        opening = asyncio.ensure_future(app.asgi_client.get(path, headers=dj_headers))
        deadline = asyncio.get_running_loop().time() + 10
        while lml_fake.stats()["in_flight"] == 0:
            assert asyncio.get_running_loop().time() < deadline, "the lookup never reached LML"
            await asyncio.sleep(0.01)
        await seeded.execute("UPDATE wxyc_schema.rotation SET discogs_release_id = $2 WHERE id = $1", rid, tier1)
        _, raced = await opening
        assert raced.status_code == 200
        lml_fake.set_latency(0.0, 0.0)
        expected = [t.title for t in release.tracklist]
        for _ in range(22):
            _, response = await app.asgi_client.get(path, headers=dj_headers)
            assert [t["title"] for t in response.json] == expected
        stored: Any = await seeded.fetchrow(
            "SELECT outcome, release_id FROM rotation_picker.row_answer WHERE rotation_id = $1", rid
        )
        assert (stored["outcome"], stored["release_id"]) == ("tier1", tier1)
