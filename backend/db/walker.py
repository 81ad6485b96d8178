"""The fleet walker's lease (a session advisory lock) and its published status row."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from backend.db.schemas import Schemas


def lease_key(schemas: Schemas) -> str:
    """The advisory-lock name (hashed by ``hashtext``) that elects the fleet's walker."""
    return f"{schemas.service}.walker"


class WalkerStatusStore:
    """Read and write the ``walker`` row: which host walks, since when, and its progress."""

    def __init__(self, pool: asyncpg.Pool, schemas: Schemas) -> None:
        self._pool = pool
        svc = schemas.service
        self._write_sql = f"""
            INSERT INTO {svc}.walker (id, host, pid, since, updated_at, status)
            VALUES (true, $1, $2, $3, now(), $4::jsonb)
            ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, since = excluded.since,
                                           updated_at = now(), status = excluded.status
        """
        self._read_sql = f"""
            SELECT host, pid, since, updated_at, status::text AS status,
                   extract(epoch FROM now() - updated_at)::float8 AS age_s
            FROM {svc}.walker WHERE id
        """

    async def write(self, host: str, pid: int, since: Any, status: dict[str, Any]) -> None:
        await self._pool.execute(self._write_sql, host, pid, since, json.dumps(status))

    async def read(self) -> dict[str, Any] | None:
        r = await self._pool.fetchrow(self._read_sql)
        if r is None:
            return None
        return {
            "host": r["host"],
            "pid": r["pid"],
            "since": r["since"].isoformat(timespec="seconds"),
            "updated_at": r["updated_at"].isoformat(timespec="seconds"),
            "age_s": round(r["age_s"], 1),
            **json.loads(r["status"]),
        }
