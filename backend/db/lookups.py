"""LML lookup answers shared by every process of every host for a few minutes (``lookup_answer``)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from backend.clients.lml import LookupResponse
from backend.db.schemas import Schemas
from backend.models import RotationTrack


def encode(response: LookupResponse) -> str:
    return json.dumps(
        {
            "search_type": response.search_type,
            "result_count": response.result_count,
            "top_release_id": response.top_release_id,
            "top_tracklist": [list(t) for t in response.top_tracklist] if response.top_tracklist else None,
            "timeout": response.timeout,
            "degraded": response.degraded,
        }
    )


def decode(text: str) -> LookupResponse:
    body: dict[str, Any] = json.loads(text)
    tracks = body["top_tracklist"]
    return LookupResponse(
        search_type=body["search_type"],
        result_count=body["result_count"],
        top_release_id=body["top_release_id"],
        top_tracklist=tuple(RotationTrack(p, t, d, tuple(a)) for p, t, d, a in tracks) if tracks else None,
        timeout=body["timeout"],
        degraded=body["degraded"],
    )


class SharedLookups:
    """Read and write ``lookup_answer`` rows, keyed by the coordinator's normalised (artist, album)."""

    def __init__(self, pool: asyncpg.Pool, schemas: Schemas) -> None:
        self._pool = pool
        svc = schemas.service
        self._get_sql = f"""
            SELECT response::text FROM {svc}.lookup_answer
            WHERE artist = $1 AND album = $2 AND expires_at > now()
        """
        self._put_sql = f"""
            INSERT INTO {svc}.lookup_answer (artist, album, response, expires_at)
            VALUES ($1, $2, $3::jsonb, now() + make_interval(secs => $4))
            ON CONFLICT (artist, album) DO UPDATE SET response = excluded.response, expires_at = excluded.expires_at
        """
        self._purge_sql = f"DELETE FROM {svc}.lookup_answer WHERE expires_at < now()"

    async def get(self, key: tuple[str, str]) -> LookupResponse | None:
        text: str | None = await self._pool.fetchval(self._get_sql, *key)
        return None if text is None else decode(text)

    async def put(self, key: tuple[str, str], response: LookupResponse, ttl_s: float) -> None:
        await self._pool.execute(self._put_sql, key[0], key[1], encode(response), ttl_s)

    async def purge(self) -> int:
        return int((await self._pool.execute(self._purge_sql)).split()[-1])
