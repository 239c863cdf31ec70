"""The Database handle: an async engine plus the short-transaction contract repositories use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"timeout": pool_timeout, "command_timeout": 30},
    )


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
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, OSError) as exc:
            raise ServiceUnavailable("database unavailable") from exc
        except sqlalchemy.exc.TimeoutError as exc:
            raise ServiceUnavailable("database connection pool exhausted") from exc

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (same error contract as `transaction`)."""
        async with self.transaction() as conn:
            yield conn

    async def ping(self) -> None:
        """Raises ServiceUnavailable when the database does not answer."""
        async with self.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
