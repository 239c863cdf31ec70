"""The Database handle: an async engine plus the short-transaction contract repositories use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import sqlalchemy.exc
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agent_api.domain.errors import ServiceUnavailable


def create_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 5.0) -> AsyncEngine:
    """An engine for `url`. PostgreSQL gets a bounded pool that fails fast and pre-pings
    connections (so a restarted server is recovered without a restart of ours); SQLite gets
    foreign keys and WAL so readers do not block the writer."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # No overflow: overflow connections are closed as soon as they are returned, so under a
    # steady load above `pool_size` every request paid a new connection (TCP, TLS attempt,
    # authentication). Requests beyond the pool wait for a connection (up to pool_timeout).
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"timeout": pool_timeout, "command_timeout": 30},
    )


@contextmanager
def _connection_errors_as_unavailable() -> Iterator[None]:
    """Connection failures (and an exhausted pool) -> ServiceUnavailable; others pass."""
    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, OSError) as exc:
        raise ServiceUnavailable("database unavailable") from exc
    except sqlalchemy.exc.DBAPIError as exc:
        # A connection lost in the middle of a statement or a commit (the server died)
        # surfaces as a plain DBAPIError that SQLAlchemy flags as a disconnect.
        if exc.connection_invalidated:
            raise ServiceUnavailable("database unavailable") from exc
        raise
    except sqlalchemy.exc.TimeoutError as exc:
        raise ServiceUnavailable("database connection pool exhausted") from exc


class Database:
    """Hands out connections. A repository method takes one `transaction()` (or `connect()`
    for reads) for its own duration only: never across an LLM call or a stream.

    Connection failures surface as `ServiceUnavailable` (HTTP 503), never as a raw driver error.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a transaction that commits on exit and rolls back on error."""
        with _connection_errors_as_unavailable():
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only (same error contract as `transaction`).

        On PostgreSQL it is in autocommit mode: no BEGIN and COMMIT round trips around the
        reads (the credential lookup of every request among them). Each statement sees what
        was committed before it started, as it would in a READ COMMITTED transaction."""
        if self.dialect != "postgresql":
            async with self.transaction() as conn:
                yield conn
            return
        with _connection_errors_as_unavailable():
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn

    async def ping(self) -> None:
        """Raises ServiceUnavailable when the database does not answer."""
        async with self.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
