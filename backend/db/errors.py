"""Which database errors mean "PostgreSQL is not available right now" (503 and retry), not a bug (500)."""

from __future__ import annotations

import asyncio

import asyncpg

# Every way the database can be down, starting, stopping, overloaded, failed over to a read-only
# standby, or not (yet) carrying the service's schema. Callers answer 503 / pause and retry on these.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable
    asyncio.TimeoutError,  # connect or command timeout (TimeoutError on 3.11+)
    asyncpg.InterfaceError,  # connection closed under us, pool closing
    # A connection the server terminated mid-statement can leave asyncpg's protocol state machine
    # confused ("cannot switch to state 11; another operation (2) is in progress", MagicStack/asyncpg#784).
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InsufficientResourcesError,  # 53: too many connections, out of memory / disk
    asyncpg.OperatorInterventionError,  # 57: shutting down, starting up, crash, statement timeout
    asyncpg.PostgresSystemError,  # 58: I/O error
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a failover left us on a standby
    asyncpg.InvalidSchemaNameError,  # 3F000: the schema is not there (yet)
    asyncpg.UndefinedTableError,  # 42P01: ... nor its tables
    asyncpg.UndefinedColumnError,  # 42703
    asyncpg.UndefinedFunctionError,  # 42883
)

# The above plus any other PostgreSQL error: for best-effort work (a cache write, a status probe)
# that must never fail the request it serves.
DATABASE_ERRORS: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE, asyncpg.PostgresError)
