"""Command line: ``python -m backend check|migrate|grants ROLE|answers (size|clear)``."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from backend.config import AppConfig, ConfigError
from backend.db.answers import AnswerStore
from backend.db.gate import check_schema
from backend.db.migrate import MigrationError, apply_migrations, load_migrations
from backend.db.schemas import Schemas
from backend.db.station import (
    READ_TABLES,
    SERVICE_READ_TABLES,
    SERVICE_TABLES,
    STAMP_SIDE_EFFECT_TABLES,
    check_grants,
)


def grant_statements(schemas: Schemas, role: str, *, side_effect_tables: tuple[str, ...] = ()) -> list[str]:
    """The least privileges a serving role needs (README: "Deploying against the station").

    Args:
        schemas: the schema names.
        role: the serving role.
        side_effect_tables: station tables that station triggers write when the stamp is updated.
    """
    s, svc = schemas.station, schemas.service
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {role};",
        f"GRANT SELECT ON {', '.join(f'{s}.{t}' for t in READ_TABLES)} TO {role};",
        f"GRANT UPDATE (tracklist_lookup_attempted_at) ON {s}.rotation TO {role};",
    ]
    statements += [f"GRANT SELECT, UPDATE ON {s}.{t} TO {role};" for t in side_effect_tables]
    return [
        *statements,
        f"GRANT USAGE ON SCHEMA {svc} TO {role};",
        f"GRANT SELECT ON {', '.join(f'{svc}.{t}' for t in SERVICE_READ_TABLES)} TO {role};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(f'{svc}.{t}' for t in SERVICE_TABLES)} TO {role};",
        f"GRANT USAGE ON SEQUENCE {svc}.answer_seq TO {role};",
    ]


async def side_effect_tables(conn: asyncpg.Connection, schemas: Schemas) -> tuple[str, ...]:
    """The stamp's trigger side-effect tables that exist in this station schema."""
    found = []
    for table in STAMP_SIDE_EFFECT_TABLES:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schemas.station}.{table}"):
            found.append(table)
    return tuple(found)


async def _run(args: argparse.Namespace, settings: AppConfig) -> int:
    schemas = settings.schemas
    conn = await asyncpg.connect(settings.database_url)
    try:
        if args.command == "migrate":
            applied = await apply_migrations(conn, schemas)
            names = ", ".join(applied) or "none pending"
            print(f"applied {len(applied)} migration(s) to schema {schemas.service}: {names}")
        elif args.command == "check":
            state = await check_schema(conn, schemas)
            print(state.line)
            if state.ok:
                missing = await check_grants(conn, schemas)
                print("this role may serve" if not missing else "this role lacks: " + "; ".join(missing))
            return 0 if state.ok else 2
        elif args.command == "grants":
            tables = await side_effect_tables(conn, schemas)
            print("\n".join(grant_statements(schemas, args.role, side_effect_tables=tables)))
        elif args.command == "answers":
            pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
            try:
                store = AnswerStore(pool, schemas)
                if args.action == "clear":
                    await store.clear()
                    print("stored answers cleared (every host keeps its memory until restart)")
                else:
                    size = await store.size()
                    print(f"rows={size.rows} releases={size.releases} bytes={size.bytes}")
            finally:
                await pool.close()
        elif args.command == "print-migrations":
            for migration in load_migrations():
                print(f"-- {migration.version} sha256={migration.checksum}\n{migration.render(schemas)}")
    finally:
        await conn.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check the station schema, the service schema and this role's grants")
    sub.add_parser("migrate", help="create or update the service's own schema (run once, as the table owner)")
    sub.add_parser("print-migrations", help="print the SQL migrate would run, for review")
    grants = sub.add_parser("grants", help="print the GRANT statements a serving role needs")
    grants.add_argument("role")
    answers = sub.add_parser("answers", help="inspect or clear the stored picker answers")
    answers.add_argument("action", choices=["size", "clear"])
    args = parser.parse_args(argv)
    try:
        settings = AppConfig.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not settings.database_url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except MigrationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
