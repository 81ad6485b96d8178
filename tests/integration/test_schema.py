"""The station schema is adopted, never changed; the service's own schema is migrated beside it; least privilege."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from backend.__main__ import grant_statements, side_effect_tables
from backend.config import RESERVED_WORDS
from backend.db.gate import check_schema
from backend.db.migrate import MigrationError, apply_migrations, load_migrations, migrate, pending_migrations
from backend.db.rotation import RotationRepository
from backend.db.schemas import Schemas
from backend.db.station import check_grants, check_station_schema
from tests.conftest import SCHEMAS, create_station_database, drop_database, with_database
from tests.helpers import insert_album, insert_rotation

pytestmark = pytest.mark.pg

# What "the station schema did not change" means: every column, type, default, index and constraint.
_STATION_SHAPE = """
    SELECT 'column' AS kind, table_name || '.' || column_name AS name,
           concat_ws(' ', data_type, udt_name, is_nullable, column_default, is_generated) AS detail
    FROM information_schema.columns WHERE table_schema = $1
    UNION ALL
    SELECT 'index', tablename || '.' || indexname, indexdef FROM pg_indexes WHERE schemaname = $1
    UNION ALL
    SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = $1::regnamespace
    UNION ALL
    SELECT 'type', typname, typtype::text FROM pg_type WHERE typnamespace = $1::regnamespace AND typtype = 'e'
    ORDER BY 1, 2
"""


async def station_shape(url: str, schema: str) -> list[tuple[str, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        return [(r["kind"], r["name"], r["detail"]) for r in await conn.fetch(_STATION_SHAPE, schema)]
    finally:
        await conn.close()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def fresh_url(pg_server_url: str) -> AsyncIterator[str]:
    """A database with only the station's tables (as the station's own migrations leave it)."""
    url = await create_station_database(pg_server_url, migrated=False)
    try:
        yield url
    finally:
        await drop_database(pg_server_url, url)


class TestMigrations:
    async def test_migrate_creates_only_the_service_schema(self, fresh_url: str) -> None:
        """Migrating a station database adds the service schema and changes no station column, type or index."""
        before = await station_shape(fresh_url, SCHEMAS.station)
        assert await migrate(fresh_url, SCHEMAS) == [m.version for m in load_migrations()]
        assert await station_shape(fresh_url, SCHEMAS.station) == before
        conn = await asyncpg.connect(fresh_url)
        try:
            tables = {r["table_name"] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", SCHEMAS.service
            )}  # fmt: skip
            assert {"schema_migrations", "row_answer", "release_answer", "lml_budget", "walker"} <= tables
        finally:
            await conn.close()

    async def test_running_twice_applies_nothing_the_second_time(self, database_url: str) -> None:
        """The session database is already migrated: another run is a no-op."""
        assert await migrate(database_url, SCHEMAS) == []

    async def test_concurrent_runners_apply_each_migration_once(self, fresh_url: str) -> None:
        """Two hosts migrating one database at once: the advisory lock serialises them."""
        first, second = await asyncio.gather(migrate(fresh_url, SCHEMAS), migrate(fresh_url, SCHEMAS))
        assert sorted(first + second) == [m.version for m in load_migrations()]

    async def test_an_edited_applied_migration_is_a_clear_error(self, fresh_url: str) -> None:
        """A migration whose file changed after it was applied stops migrate with a message naming it."""
        await migrate(fresh_url, SCHEMAS)
        conn = await asyncpg.connect(fresh_url)
        try:
            await conn.execute(
                f"UPDATE {SCHEMAS.service}.schema_migrations SET checksum = 'abc' WHERE version = '0001_answers'"
            )
            with pytest.raises(MigrationError, match="0001_answers was edited after it was applied"):
                await apply_migrations(conn, SCHEMAS)
            state = await check_schema(conn, SCHEMAS)
            assert state.status == "invalid" and "0001_answers" in state.line
        finally:
            await conn.close()

    async def test_a_migration_unknown_to_this_version_is_a_clear_error(self, fresh_url: str) -> None:
        """An applied version this code does not know (a newer release migrated) is reported, not ignored."""
        await migrate(fresh_url, SCHEMAS)
        conn = await asyncpg.connect(fresh_url)
        try:
            await conn.execute(
                f"INSERT INTO {SCHEMAS.service}.schema_migrations (version, checksum) VALUES ('9999_future', 'x')"
            )
            with pytest.raises(MigrationError, match="9999_future is applied but unknown"):
                await pending_migrations(conn, SCHEMAS)
        finally:
            await conn.close()

    async def test_every_name_the_server_reserves_is_refused_by_config(self, db: asyncpg.Connection) -> None:
        """The config's reserved-word list covers this server's (names it refuses unquoted are a ConfigError)."""
        reserved = {r["word"] for r in await db.fetch("SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')")}
        assert reserved and reserved <= RESERVED_WORDS

    async def test_configured_schema_names_are_used_everywhere(self, pg_server_url: str) -> None:
        """Other station and service schema names work end to end (fixture, migrations, queries)."""
        schemas = Schemas(station="station_x", service="picker_x")
        url = await create_station_database(pg_server_url, schemas=schemas)
        try:
            conn = await asyncpg.connect(url)
            try:
                assert (await check_schema(conn, schemas)).ok
                rid = await insert_rotation(conn, schemas, artist_name="A", album_title="B")
                assert await conn.fetchval("SELECT to_regclass('wxyc_schema.rotation')") is None
            finally:
                await conn.close()
            pool = await asyncpg.create_pool(url, min_size=0, max_size=2)
            assert pool is not None
            try:
                row = await RotationRepository(pool, schemas).picker_row(rid)
                assert row is not None and row.artist_name == "A"
            finally:
                await pool.close()
        finally:
            await drop_database(pg_server_url, url)


class TestStationCheck:
    async def test_the_fixture_is_compatible(self, database_url: str) -> None:
        """The faithful station fixture has everything the service reads."""
        conn = await asyncpg.connect(database_url)
        try:
            check = await check_station_schema(conn, SCHEMAS)
            assert check.ok, check.line()
        finally:
            await conn.close()

    @pytest.mark.parametrize(
        ("ddl", "named"),
        [
            pytest.param(
                "ALTER TABLE wxyc_schema.rotation DROP COLUMN discogs_release_id",
                "missing column rotation.discogs_release_id",
                id="missing-column",
            ),
            pytest.param(
                "ALTER TABLE wxyc_schema.library ALTER COLUMN add_date TYPE text",
                "library.add_date is text (expected timestamptz)",
                id="wrong-type",
            ),
            pytest.param(
                "DROP TABLE wxyc_schema.genre_artist_crossreference CASCADE",
                "missing table genre_artist_crossreference",
                id="missing-table",
            ),
        ],
    )
    async def test_an_incompatible_station_schema_is_named_in_one_line(
        self, fresh_url: str, ddl: str, named: str
    ) -> None:
        """migrate refuses with one line naming what is missing or wrong, and exits 2 without a traceback."""
        conn = await asyncpg.connect(fresh_url)
        try:
            await conn.execute(ddl)
            with pytest.raises(MigrationError, match=re.escape(named)):
                await apply_migrations(conn, SCHEMAS)
        finally:
            await conn.close()
        result = run_cli("migrate", env={"DATABASE_URL": fresh_url})
        assert result.returncode == 2
        assert named in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


class TestCli:
    def test_check_reports_a_ready_database(self, database_url: str) -> None:
        """`python -m backend check` says the schemas are ready and the role may serve."""
        result = run_cli("check", env={"DATABASE_URL": database_url})
        assert result.returncode == 0, result.stderr
        assert "compatible" in result.stdout and "this role may serve" in result.stdout

    def test_migrate_reports_nothing_pending_on_a_current_schema(self, database_url: str) -> None:
        """`python -m backend migrate` runs against DATABASE_URL and reports nothing pending."""
        result = run_cli("migrate", env={"DATABASE_URL": database_url})
        assert result.returncode == 0, result.stderr
        assert "applied 0 migration(s) to schema rotation_picker: none pending" in result.stdout

    def test_a_malformed_database_url_is_a_clear_error(self) -> None:
        """A malformed DATABASE_URL is a clear error, not a traceback."""
        result = run_cli("migrate", env={"DATABASE_URL": "mysql://nope"})
        assert result.returncode == 2
        assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
async def serving_role(pg_server_url: str, fresh_url: str) -> AsyncIterator[tuple[str, str]]:
    """A migrated database and a login role granted exactly ``python -m backend grants``; yields (url, role)."""
    role = "rp_app_" + uuid.uuid4().hex[:8]
    await migrate(fresh_url, SCHEMAS)
    owner = await asyncpg.connect(fresh_url)
    try:
        await owner.execute(f"CREATE ROLE {role} LOGIN")
        for statement in grant_statements(SCHEMAS, role, side_effect_tables=await side_effect_tables(owner, SCHEMAS)):
            await owner.execute(statement)
    finally:
        await owner.close()
    url = fresh_url.replace("://postgres@", f"://{role}@", 1).replace("://postgres:@", f"://{role}:@", 1)
    assert role in url, "the test server's URL must name the postgres user"
    try:
        yield url, role
    finally:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await drop_database(pg_server_url, fresh_url)
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await admin.close()


class TestLeastPrivilege:
    async def test_the_documented_grants_are_enough_to_serve(self, serving_role: tuple[str, str]) -> None:
        """With only the printed grants the role reads, stamps, stores answers and takes LML tokens."""
        url, _role = serving_role
        conn = await asyncpg.connect(url)
        try:
            assert await check_grants(conn, SCHEMAS) == ()
            assert (await check_schema(conn, SCHEMAS)).ok
        finally:
            await conn.close()

    async def test_the_serving_role_cannot_change_station_tables(self, serving_role: tuple[str, str]) -> None:
        """The role may update the stamp column only: no other column, no DDL."""
        url, _role = serving_role
        conn = await asyncpg.connect(url)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE wxyc_schema.rotation SET artist_name = 'x'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("ALTER TABLE wxyc_schema.rotation ADD COLUMN x int")
            await conn.execute("UPDATE wxyc_schema.rotation SET tracklist_lookup_attempted_at = NULL")
        finally:
            await conn.close()

    async def test_migrate_as_a_role_that_may_not_is_a_clear_error(self, pg_server_url: str, fresh_url: str) -> None:
        """A role without the owner's privileges gets one line telling it to run migrate as the owner."""
        role = "rp_weak_" + uuid.uuid4().hex[:8]
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f"CREATE ROLE {role} LOGIN")
            owner = await asyncpg.connect(fresh_url)
            try:
                await owner.execute(f"GRANT USAGE ON SCHEMA wxyc_schema TO {role}")
                await owner.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA wxyc_schema TO {role}")
            finally:
                await owner.close()
            url = fresh_url.replace("://postgres@", f"://{role}@", 1).replace("://postgres:@", f"://{role}:@", 1)
            result = run_cli("migrate", env={"DATABASE_URL": url})
            assert result.returncode == 2
            assert "permission denied" in result.stderr and "as the owner" in result.stderr
            assert "Traceback" not in result.stderr
        finally:
            owner = await asyncpg.connect(fresh_url)
            try:
                await owner.execute(f"DROP OWNED BY {role}")
            finally:
                await owner.close()
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
            await admin.close()


class TestRepository:
    @pytest.fixture
    async def repo(self, database_url: str) -> AsyncIterator[RotationRepository]:
        pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
        assert pool is not None
        try:
            yield RotationRepository(pool, SCHEMAS)
        finally:
            await pool.close()

    async def test_kill_date_today_is_inactive_and_tomorrow_active(
        self, db: asyncpg.Connection, repo: RotationRepository
    ) -> None:
        """NULL and future kill dates are active; today and past are not."""
        today: dt.date = await db.fetchval("SELECT CURRENT_DATE")
        never = await insert_rotation(db, album_title="never")
        tomorrow = await insert_rotation(db, album_title="tomorrow", kill_date=today + dt.timedelta(days=1))
        await insert_rotation(db, album_title="today", kill_date=today)
        await insert_rotation(db, album_title="past", kill_date=today - dt.timedelta(days=3))
        far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
        assert sorted(await repo.due_rows(refresh_before=far)) == sorted([never, tomorrow])
        assert sorted(r["rotation_id"] for r in await repo.list_active()) == sorted([never, tomorrow])
        assert await repo.active_count() == 2

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
        now = dt.datetime.now(dt.timezone.utc)
        assert await repo.due_rows(refresh_before=now) == [h_new, h_old, m_new, m_old, l_one, l_two, s_new]

    async def test_inputs_change_with_text_links_and_release_ids_only(
        self, db: asyncpg.Connection, repo: RotationRepository
    ) -> None:
        """The fingerprint follows the lookup text, the album link and both release ids; nothing else."""
        album = await insert_album(db, with_identity=True)
        rid = await insert_rotation(db, artist_name="A", album_title="B", album_id=album)

        async def inputs() -> str:
            return (await repo.current_inputs([rid]))[rid]

        seen = {await inputs()}
        await db.execute(
            "UPDATE wxyc_schema.rotation SET kill_date = CURRENT_DATE + 9, record_label = 'L' WHERE id = $1", rid
        )
        assert await inputs() in seen
        changes: list[tuple[str, Any]] = [
            ("UPDATE wxyc_schema.rotation SET artist_name = 'A2' WHERE id = $1", rid),
            ("UPDATE wxyc_schema.rotation SET album_title = NULL WHERE id = $1", rid),
            ("UPDATE wxyc_schema.rotation SET discogs_release_id = 7 WHERE id = $1", rid),
            ("UPDATE wxyc_schema.library_identity SET discogs_release_id = 8 WHERE library_id = $1", album),
            ("UPDATE wxyc_schema.rotation SET album_id = NULL WHERE id = $1", rid),
        ]
        for statement, arg in changes:
            await db.execute(statement, arg)
            now = await inputs()
            assert now not in seen, statement
            seen.add(now)

    async def test_recent_track_is_live_and_other_entries_are_not(
        self, db: asyncpg.Connection, repo: RotationRepository
    ) -> None:
        """Only a 'track' entry inside the lookback window counts as a live DJ."""
        assert await repo.live_activity(60) is False
        await db.execute("INSERT INTO wxyc_schema.flowsheet (entry_type, play_order) VALUES ('talkset', 1)")
        await db.execute(
            "INSERT INTO wxyc_schema.flowsheet (entry_type, add_time, play_order)"
            " VALUES ('track', now() - interval '5 minutes', 2)"
        )
        assert await repo.live_activity(60) is False
        await db.execute("INSERT INTO wxyc_schema.flowsheet (entry_type, play_order) VALUES ('track', 3)")
        assert await repo.live_activity(60) is True
        assert await repo.live_activity(0) is False


def test_urls_name_a_user_the_role_tests_can_swap(pg_server_url: str) -> None:
    """The least-privilege tests connect as another role by swapping the URL's user (postgres)."""
    url = with_database(pg_server_url, "x")
    assert "://postgres@" in url or "://postgres:@" in url
