"""Schema, migrations, the active predicate, the walk order and the live-activity probe on real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from backend.db.migrate import apply_migrations, load_migrations, migrate
from backend.db.rotation import RotationRepository

pytestmark = pytest.mark.pg


async def insert_rotation(conn: asyncpg.Connection, **values: object) -> int:
    values.setdefault("rotation_bin", "M")
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    rid: int = await conn.fetchval(
        f"INSERT INTO wxyc_schema.rotation ({columns}) VALUES ({params}) RETURNING id", *values.values()
    )
    return rid


@pytest.fixture
async def repo(database_url: str) -> RotationRepository:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
    assert pool is not None
    yield RotationRepository(pool)  # type: ignore[misc]
    await pool.close()


class TestMigrations:
    async def test_running_twice_applies_nothing_the_second_time(self, database_url: str) -> None:
        """The session database is already migrated: another run is a no-op."""
        assert await migrate(database_url) == []

    async def test_concurrent_runners_apply_each_migration_once(self, pg_server_url: str) -> None:
        """Two hosts migrating one fresh database at once: the advisory lock serialises them."""
        admin = await asyncpg.connect(pg_server_url)
        name = "rp_migrate_race"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            from urllib.parse import urlsplit, urlunsplit

            url = urlunsplit(urlsplit(pg_server_url)._replace(path="/" + name))
            first, second = await asyncio.gather(migrate(url), migrate(url))
            assert sorted(first + second) == [m.version for m in load_migrations()]
            conn = await asyncpg.connect(url)
            try:
                assert await apply_migrations(conn) == []
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


class TestSchema:
    async def test_other_writers_can_insert_just_the_listed_columns(self, db: asyncpg.Connection) -> None:
        """Extra columns are nullable or defaulted, so minimal inserts work."""
        album = await db.fetchval(
            "INSERT INTO wxyc_schema.library (artist_name, album_title, label) VALUES ('A', 'B', 'C') RETURNING id"
        )
        await db.execute(
            "INSERT INTO wxyc_schema.library_identity (library_id, discogs_release_id) VALUES ($1, 5)", album
        )
        rid = await insert_rotation(db, album_id=album, rotation_bin="H")
        row = await db.fetchrow("SELECT add_date, kill_date FROM wxyc_schema.rotation WHERE id = $1", rid)
        assert row["add_date"] == await db.fetchval("SELECT CURRENT_DATE") and row["kill_date"] is None
        await db.execute("INSERT INTO wxyc_schema.flowsheet (rotation_id) VALUES ($1)", rid)

    @pytest.mark.parametrize("bad", [0, -5])
    async def test_release_id_must_be_positive(self, db: asyncpg.Connection, bad: int) -> None:
        """0 (LML's sentinel) and negatives cannot be stored as a tier-1 id."""
        with pytest.raises(asyncpg.CheckViolationError):
            await insert_rotation(db, discogs_release_id=bad)

    async def test_deleting_an_album_cascades_to_rotation(self, db: asyncpg.Connection) -> None:
        """rotation.album_id is ON DELETE CASCADE."""
        album = await db.fetchval("INSERT INTO wxyc_schema.library (album_title) VALUES ('X') RETURNING id")
        await insert_rotation(db, album_id=album)
        await db.execute("DELETE FROM wxyc_schema.library WHERE id = $1", album)
        assert await db.fetchval("SELECT count(*) FROM wxyc_schema.rotation") == 0


class TestActivePredicate:
    async def test_kill_date_today_is_inactive_and_tomorrow_active(
        self, db: asyncpg.Connection, repo: RotationRepository
    ) -> None:
        """NULL and future kill dates are active; today and past are not."""
        today: dt.date = await db.fetchval("SELECT CURRENT_DATE")
        never = await insert_rotation(db)
        tomorrow = await insert_rotation(db, kill_date=today + dt.timedelta(days=1))
        await insert_rotation(db, kill_date=today)
        await insert_rotation(db, kill_date=today - dt.timedelta(days=3))
        assert sorted(await repo.active_ids_in_walk_order()) == sorted([never, tomorrow])
        assert sorted(r["rotation_id"] for r in await repo.list_active()) == sorted([never, tomorrow])

    async def test_walk_order_is_heavy_first_then_newest(
        self, db: asyncpg.Connection, repo: RotationRepository
    ) -> None:
        """H before M before L before S; newest add_date first within a bin; id breaks ties."""
        d = dt.date(2026, 1, 1)
        s_new = await insert_rotation(db, rotation_bin="S", add_date=d + dt.timedelta(days=9))
        m_old = await insert_rotation(db, rotation_bin="M", add_date=d)
        h_old = await insert_rotation(db, rotation_bin="H", add_date=d)
        m_new = await insert_rotation(db, rotation_bin="M", add_date=d + dt.timedelta(days=5))
        h_new = await insert_rotation(db, rotation_bin="H", add_date=d + dt.timedelta(days=1))
        l_one = await insert_rotation(db, rotation_bin="L", add_date=d)
        l_two = await insert_rotation(db, rotation_bin="L", add_date=d)
        assert await repo.active_ids_in_walk_order() == [h_new, h_old, m_new, m_old, l_one, l_two, s_new]


class TestLiveActivity:
    async def test_recent_track_is_live_and_other_entries_are_not(
        self, db: asyncpg.Connection, repo: RotationRepository
    ) -> None:
        """Only a 'track' entry inside the lookback window counts as a live DJ."""
        assert await repo.live_activity(60) is False
        await db.execute("INSERT INTO wxyc_schema.flowsheet (entry_type) VALUES ('talkset')")
        await db.execute(
            "INSERT INTO wxyc_schema.flowsheet (entry_type, add_time) VALUES ('track', now() - interval '5 minutes')"
        )
        assert await repo.live_activity(60) is False
        await db.execute("INSERT INTO wxyc_schema.flowsheet (entry_type) VALUES ('track')")
        assert await repo.live_activity(60) is True
        assert await repo.live_activity(0) is False


class TestMigrateCommand:
    def test_cli_applies_nothing_on_a_current_schema(self, database_url: str) -> None:
        """`python -m backend migrate` runs against DATABASE_URL and reports nothing pending."""
        import os
        import subprocess
        import sys

        result = subprocess.run(
            [sys.executable, "-m", "backend", "migrate"],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "applied 0 migration(s): none pending" in result.stdout

    def test_cli_rejects_a_malformed_database_url(self) -> None:
        """A malformed DATABASE_URL is a clear error, not a traceback."""
        import os
        import subprocess
        import sys

        result = subprocess.run(
            [sys.executable, "-m", "backend", "migrate"],
            env={**os.environ, "DATABASE_URL": "mysql://nope"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
