"""Integration fixtures: repositories on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_api.infrastructure.db.database import Database, create_engine


class RollbackDatabase(Database):
    """A Database whose transactions are savepoints inside one outer transaction that the
    fixture rolls back: each test starts from the migrated, empty schema."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection) -> None:
        super().__init__(engine)
        self._conn = conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._conn.begin_nested():
            yield self._conn

    connect = transaction


@pytest.fixture(scope="session")
async def pg_engine(migrated_pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(pg_engine: AsyncEngine) -> AsyncIterator[Database]:
    async with pg_engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield RollbackDatabase(pg_engine, conn)
        finally:
            await outer.rollback()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards (never a flush)."""
    prefix = f"test-{uuid.uuid4().hex}"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
