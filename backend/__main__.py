"""Command line: ``python -m backend migrate`` applies pending migrations to DATABASE_URL."""

from __future__ import annotations

import argparse
import asyncio
import sys

from backend.config import AppConfig, ConfigError
from backend.db.migrate import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations to DATABASE_URL")
    args = parser.parse_args(argv)
    try:
        settings = AppConfig.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        if not settings.database_url:
            print("DATABASE_URL is not set", file=sys.stderr)
            return 2
        applied = asyncio.run(migrate(settings.database_url))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
