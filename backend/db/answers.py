"""Persisted picker answers in the service's own schema: written by whoever resolves, loaded by every worker.

Besides answers, the tables hold the walk's retry schedule: a row (``outcome = 'lml_error'``) or a
release (``status = 'error'``) LML could not answer, with the time of its next attempt in
``expires_at``. Readers that serve pickers skip those; the walker reads them to know what is due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from backend.db.rotation import ACTIVE_ROTATION, INPUTS_FINGERPRINT, RETRY_OUTCOME, StoredRow
from backend.db.schemas import Schemas

__all__ = ["RETRY_OUTCOME", "AnswerStore", "Loaded", "RetrySchedule", "StoreSize", "StoredRelease", "StoredRow"]


@dataclass(frozen=True, slots=True)
class StoredRelease:
    release_id: int
    tracks: str | None  # None: LML answered 404
    ttl_s: float
    seq: int


@dataclass(frozen=True)
class Loaded:
    """What one read of the store returned, and the position to continue from."""

    rows: list[StoredRow]
    releases: list[StoredRelease]
    last_seq: int


@dataclass(frozen=True)
class StoreSize:
    rows: int
    releases: int
    retrying: int
    bytes: int


@dataclass(frozen=True)
class RetrySchedule:
    """How many rows and releases wait for a retry, and in how many seconds the first is due (None: none)."""

    pending: int
    next_in_s: float | None


class AnswerStore:
    """The ``row_answer`` and ``release_answer`` tables.

    Every write bumps a shared sequence and NOTIFYs ``<service>_answers`` (a trigger), so readers
    follow with :meth:`load` from the last sequence they saw. Writes take a transaction-scoped
    advisory lock before drawing their sequence number, so they commit in sequence order and a
    reader that has seen number N has seen every committed number below it.

    Args:
        pool: an asyncpg pool.
        schemas: the station and service schema names.
    """

    def __init__(self, pool: asyncpg.Pool, schemas: Schemas) -> None:
        self._pool = pool
        s, svc = schemas.station, schemas.service
        guard = f"WITH guard AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext('{svc}.answers')))"
        current_row = f"""
            FROM guard, {s}.rotation r
            LEFT JOIN {s}.library_identity li ON li.library_id = r.album_id
            WHERE r.id = $1 AND {INPUTS_FINGERPRINT} = $2
        """
        self._save_row_sql = f"""
            {guard}
            INSERT INTO {svc}.row_answer (rotation_id, inputs, outcome, release_id, tracks, expires_at)
            SELECT r.id, $2, $3, $4, $5, now() + make_interval(secs => $6)
            {current_row}
            ON CONFLICT (rotation_id) DO UPDATE
              SET inputs = excluded.inputs, outcome = excluded.outcome, release_id = excluded.release_id,
                  tracks = excluded.tracks, attempts = 0, computed_at = now(), expires_at = excluded.expires_at,
                  seq = nextval('{svc}.answer_seq')
            RETURNING seq
        """
        # A retry never replaces a valid answer (a failed refresh keeps serving the old one).
        self._save_row_retry_sql = f"""
            {guard}
            INSERT INTO {svc}.row_answer AS old (rotation_id, inputs, outcome, attempts, expires_at)
            SELECT r.id, $2, '{RETRY_OUTCOME}', 1, now() + make_interval(secs => $3)
            {current_row}
            ON CONFLICT (rotation_id) DO UPDATE
              SET inputs = excluded.inputs, outcome = excluded.outcome, release_id = NULL, tracks = NULL,
                  attempts = CASE WHEN old.outcome = '{RETRY_OUTCOME}' AND old.inputs = excluded.inputs
                                  THEN old.attempts + 1 ELSE 1 END,
                  computed_at = now(),
                  expires_at = now() + make_interval(secs => least($3 * 2 ^ (CASE
                                  WHEN old.outcome = '{RETRY_OUTCOME}' AND old.inputs = excluded.inputs
                                  THEN old.attempts ELSE 0 END), $4)),
                  seq = nextval('{svc}.answer_seq')
              WHERE old.outcome = '{RETRY_OUTCOME}' OR old.expires_at < now() OR old.inputs <> excluded.inputs
            RETURNING attempts, extract(epoch FROM expires_at - now())::float8 AS retry_in_s
        """
        self._save_release_sql = f"""
            {guard}
            INSERT INTO {svc}.release_answer (release_id, status, tracks, expires_at)
            SELECT $1, $2, $3, now() + make_interval(secs => $4) FROM guard
            ON CONFLICT (release_id) DO UPDATE
              SET status = excluded.status, tracks = excluded.tracks, attempts = 0, computed_at = now(),
                  expires_at = excluded.expires_at, seq = nextval('{svc}.answer_seq')
            RETURNING seq
        """
        self._save_release_retry_sql = f"""
            {guard}
            INSERT INTO {svc}.release_answer AS old (release_id, status, attempts, expires_at)
            SELECT $1, 'error', 1, now() + make_interval(secs => $2) FROM guard
            ON CONFLICT (release_id) DO UPDATE
              SET status = 'error', tracks = NULL,
                  attempts = CASE WHEN old.status = 'error' THEN old.attempts + 1 ELSE 1 END,
                  computed_at = now(),
                  expires_at = now() + make_interval(secs => least($2 * 2 ^ (CASE
                                  WHEN old.status = 'error' THEN old.attempts ELSE 0 END), $3)),
                  seq = nextval('{svc}.answer_seq')
              WHERE old.status = 'error' OR old.expires_at < now()
            RETURNING attempts
        """
        self._load_rows_sql = f"""
            SELECT ans.rotation_id, ans.inputs, ans.outcome, ans.release_id, ans.tracks, ans.seq,
                   extract(epoch FROM ans.expires_at - now())::float8 AS ttl_s
            FROM {svc}.row_answer ans
            JOIN {s}.rotation r ON r.id = ans.rotation_id
            LEFT JOIN {s}.library_identity li ON li.library_id = r.album_id
            WHERE ans.seq > $1 AND ans.expires_at > now() AND ans.outcome <> '{RETRY_OUTCOME}'
              AND ans.inputs = {INPUTS_FINGERPRINT}
        """
        self._load_releases_sql = f"""
            SELECT release_id, tracks, seq, extract(epoch FROM expires_at - now())::float8 AS ttl_s
            FROM {svc}.release_answer
            WHERE seq > $1 AND expires_at > now() AND status <> 'error'
        """
        self._last_seq_sql = (
            f"SELECT greatest((SELECT max(seq) FROM {svc}.row_answer), (SELECT max(seq) FROM {svc}.release_answer))"
        )
        self._release_sql = f"""
            SELECT release_id, tracks, seq, extract(epoch FROM expires_at - now())::float8 AS ttl_s
            FROM {svc}.release_answer WHERE release_id = $1 AND expires_at > now() AND status <> 'error'
        """
        # Releases the walk must (re)fetch: used by a valid row answer and either never stored,
        # due for a retry, or a tracklist that expires soon. Expired 404s are left to live opens.
        self._due_releases_sql = f"""
            SELECT DISTINCT ans.release_id, rel.expires_at
            FROM {svc}.row_answer ans
            LEFT JOIN {svc}.release_answer rel ON rel.release_id = ans.release_id
            WHERE ans.release_id IS NOT NULL AND ans.tracks IS NULL AND ans.outcome <> '{RETRY_OUTCOME}'
              AND ans.expires_at > now()
              AND ((rel.release_id IS NULL AND NOT $2)
                   OR (rel.status = 'error' AND rel.expires_at < now())
                   OR (rel.status = 'ok' AND rel.expires_at < $1 AND NOT $2))
            ORDER BY rel.expires_at NULLS FIRST
        """
        # The same retries the walk's due queries return (rows still in rotation, releases still in
        # use), so "a retry is due" always means there is something to retry.
        self._retry_schedule_sql = f"""
            SELECT count(*) AS pending, extract(epoch FROM min(due) - now())::float8 AS next_in_s FROM (
                SELECT ans.expires_at AS due FROM {svc}.row_answer ans
                JOIN {s}.rotation r ON r.id = ans.rotation_id
                WHERE ans.outcome = '{RETRY_OUTCOME}' AND {ACTIVE_ROTATION}
                UNION ALL
                SELECT rel.expires_at FROM {svc}.release_answer rel
                WHERE rel.status = 'error' AND EXISTS (
                    SELECT 1 FROM {svc}.row_answer ans WHERE ans.release_id = rel.release_id
                    AND ans.tracks IS NULL AND ans.outcome <> '{RETRY_OUTCOME}' AND ans.expires_at > now())
            ) retries
        """
        self._purge_rows_sql = f"""
            DELETE FROM {svc}.row_answer ans
            WHERE NOT EXISTS (SELECT 1 FROM {s}.rotation r WHERE r.id = ans.rotation_id AND {ACTIVE_ROTATION})
               OR (ans.expires_at < now() - interval '1 day')
        """
        self._purge_releases_sql = f"""
            DELETE FROM {svc}.release_answer rel
            WHERE rel.expires_at < now()
              AND NOT EXISTS (SELECT 1 FROM {svc}.row_answer ans WHERE ans.release_id = rel.release_id)
        """
        self._size_sql = f"""
            SELECT (SELECT count(*) FROM {svc}.row_answer WHERE outcome <> '{RETRY_OUTCOME}') AS rows,
                   (SELECT count(*) FROM {svc}.release_answer WHERE status <> 'error') AS releases,
                   (SELECT count(*) FROM {svc}.row_answer WHERE outcome = '{RETRY_OUTCOME}')
                   + (SELECT count(*) FROM {svc}.release_answer WHERE status = 'error') AS retrying,
                   pg_total_relation_size('{svc}.row_answer') + pg_total_relation_size('{svc}.release_answer') AS bytes
        """
        self._purge_lookups_sql = f"DELETE FROM {svc}.lookup_answer WHERE expires_at < now()"
        self._clear_sql = f"TRUNCATE {svc}.row_answer, {svc}.release_answer, {svc}.lookup_answer"

    # -- writes ------------------------------------------------------------------------------------

    async def save_row(
        self,
        rotation_id: int,
        *,
        inputs: str,
        outcome: str,
        release_id: int | None,
        tracks: str | None,
        ttl_s: float,
    ) -> int | None:
        """Store a row's answer only if the row still has the ``inputs`` it was computed from.

        Returns:
            The answer's sequence number, or None when the inputs changed meanwhile (nothing stored).
        """
        seq: int | None = await self._pool.fetchval(
            self._save_row_sql, rotation_id, inputs, outcome, release_id, tracks, ttl_s
        )
        return seq

    async def save_row_retry(self, rotation_id: int, inputs: str, *, first_s: float, max_s: float) -> float | None:
        """Schedule the row's next attempt: ``first_s`` doubling per failed attempt, at most ``max_s``.

        Returns:
            Seconds until the retry is due, or None when nothing was written (the inputs changed,
            or a valid answer exists and keeps being served).
        """
        row = await self._pool.fetchrow(self._save_row_retry_sql, rotation_id, inputs, first_s, max_s)
        return None if row is None else float(row["retry_in_s"])

    async def save_release(self, release_id: int, tracks: str | None, ttl_s: float) -> int:
        """Store a release's tracklist (``None``: LML 404)."""
        status = "ok" if tracks is not None else "not_found"
        seq: int = await self._pool.fetchval(self._save_release_sql, release_id, status, tracks, ttl_s)
        return seq

    async def save_release_retry(self, release_id: int, *, first_s: float, max_s: float) -> None:
        """Schedule the release's next fetch (never over a valid stored tracklist)."""
        await self._pool.execute(self._save_release_retry_sql, release_id, first_s, max_s)

    # -- reads -------------------------------------------------------------------------------------

    async def load(self, after_seq: int = 0) -> Loaded:
        """Every valid, unexpired answer written after ``after_seq`` (0: everything)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row_records = await conn.fetch(self._load_rows_sql, after_seq)
            release_records = await conn.fetch(self._load_releases_sql, after_seq)
            last: int | None = await conn.fetchval(self._last_seq_sql)
        rows = [
            StoredRow(r["rotation_id"], r["inputs"], r["outcome"], r["release_id"], r["tracks"], r["ttl_s"], r["seq"])
            for r in row_records
        ]
        releases = [StoredRelease(r["release_id"], r["tracks"], r["ttl_s"], r["seq"]) for r in release_records]
        return Loaded(rows, releases, max(after_seq, last or 0))

    async def release(self, release_id: int) -> StoredRelease | None:
        """One release's stored, unexpired tracklist (a cache miss checks here before asking LML)."""
        r = await self._pool.fetchrow(self._release_sql, release_id)
        return None if r is None else StoredRelease(r["release_id"], r["tracks"], r["ttl_s"], r["seq"])

    async def due_releases(self, refresh_before: dt.datetime, *, retries_only: bool = False) -> list[int]:
        """Releases the walk must fetch: never stored, due for a retry, or expiring before ``refresh_before``."""
        records = await self._pool.fetch(self._due_releases_sql, refresh_before, retries_only)
        return [r["release_id"] for r in records]

    async def retry_schedule(self) -> RetrySchedule:
        r = await self._pool.fetchrow(self._retry_schedule_sql)
        assert r is not None
        return RetrySchedule(r["pending"], r["next_in_s"])

    async def size(self) -> StoreSize:
        r = await self._pool.fetchrow(self._size_sql)
        assert r is not None
        return StoreSize(r["rows"], r["releases"], r["retrying"], r["bytes"])

    # -- housekeeping ------------------------------------------------------------------------------

    async def purge(self) -> tuple[int, int]:
        """Delete answers of rows no longer in rotation, long-expired answers, and unused expired releases."""
        rows = await self._pool.execute(self._purge_rows_sql)
        releases = await self._pool.execute(self._purge_releases_sql)
        await self._pool.execute(self._purge_lookups_sql)
        return int(rows.split()[-1]), int(releases.split()[-1])

    async def clear(self) -> None:
        """Forget every stored answer (operators: ``python -m backend answers clear``)."""
        await self._pool.execute(self._clear_sql)
