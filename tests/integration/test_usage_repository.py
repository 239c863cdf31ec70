"""SqlUsageRepository on PostgreSQL and SQLite: recording LLM usage and summing it per day,
model and API key, scoped to the owner and the period."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from agent_api.application.ports_usage import UsageBucket
from agent_api.domain.api_keys import ApiKey
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db.api_keys import SqlApiKeyRepository
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import llm_usage
from agent_api.infrastructure.db.usage import SqlUsageRepository
from agent_api.infrastructure.db.users import SqlUserRepository
from tests.integration.databases import backend_db, sqlite_db

__all__ = ["backend_db", "sqlite_db"]

DAY1 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
DAY2 = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)


async def add_user(db: Database, email: str) -> User:
    user = User(uuid.uuid4(), email, "Ada", Role.USER, True, "x", DAY1, DAY1)
    await SqlUserRepository(db).add(user)
    return user


class Seeded:
    def __init__(self, user: User, key: ApiKey) -> None:
        self.user = user
        self.key = key


@pytest.fixture
async def seeded(backend_db: Database) -> Seeded:
    ada = await add_user(backend_db, "ada@example.com")
    bob = await add_user(backend_db, "bob@example.com")
    key, _ = ApiKey.issue(user_id=ada.id, name="k", now=DAY1)
    await SqlApiKeyRepository(backend_db).add(key)
    usage = SqlUsageRepository(backend_db)
    await usage.record(ada.id, None, None, "gpt-4o-mini", 10, 5, at=DAY1)
    # 01:40 at +02:00 on March 2 is 23:40 UTC on March 1: days are UTC days.
    plus_two = timezone(timedelta(hours=2))
    at = (DAY1 + timedelta(minutes=10)).astimezone(plus_two)
    await usage.record(ada.id, key.id, None, "gpt-4o", 100, 50, at=at)
    await usage.record(ada.id, key.id, None, "gpt-4o-mini", 1, 2, at=DAY2)
    await usage.record(bob.id, None, None, "gpt-4o-mini", 7777, 7777, at=DAY1)
    return Seeded(ada, key)


async def test_record_stores_the_total(backend_db: Database, seeded: Seeded) -> None:
    async with backend_db.connect() as conn:
        rows = (
            await conn.execute(select(llm_usage).where(llm_usage.c.user_id == seeded.user.id))
        ).all()
    assert sorted(r.total_tokens for r in rows) == [3, 15, 150]


async def test_grouped_by_day(backend_db: Database, seeded: Seeded) -> None:
    buckets = await SqlUsageRepository(backend_db).summarize(
        seeded.user.id, DAY1 - timedelta(days=1), DAY2 + timedelta(days=1), "day"
    )
    assert buckets == [
        UsageBucket("2026-03-01", 2, 110, 55, 165),
        UsageBucket("2026-03-02", 1, 1, 2, 3),
    ]


async def test_grouped_by_model(backend_db: Database, seeded: Seeded) -> None:
    buckets = await SqlUsageRepository(backend_db).summarize(
        seeded.user.id, DAY1 - timedelta(days=1), DAY2 + timedelta(days=1), "model"
    )
    assert buckets == [
        UsageBucket("gpt-4o", 1, 100, 50, 150),
        UsageBucket("gpt-4o-mini", 2, 11, 7, 18),
    ]


async def test_grouped_by_api_key_and_filtered_by_key(backend_db: Database, seeded: Seeded) -> None:
    repo = SqlUsageRepository(backend_db)
    start, end = DAY1 - timedelta(days=1), DAY2 + timedelta(days=1)
    assert await repo.summarize(seeded.user.id, start, end, "api_key") == [
        UsageBucket(None, 1, 10, 5, 15),
        UsageBucket(str(seeded.key.id), 2, 101, 52, 153),
    ]
    only_key = await repo.summarize(seeded.user.id, start, end, "model", api_key_id=seeded.key.id)
    assert [b.key for b in only_key] == ["gpt-4o", "gpt-4o-mini"]
    assert sum(b.requests for b in only_key) == 2


async def test_the_period_is_half_open(backend_db: Database, seeded: Seeded) -> None:
    repo = SqlUsageRepository(backend_db)
    buckets = await repo.summarize(seeded.user.id, DAY1, DAY1 + timedelta(minutes=10), "model")
    assert buckets == [UsageBucket("gpt-4o-mini", 1, 10, 5, 15)]
    assert (
        await repo.summarize(
            seeded.user.id, DAY2 + timedelta(hours=1), DAY2 + timedelta(days=1), "day"
        )
        == []
    )


async def test_negative_token_counts_are_a_bug(backend_db: Database, seeded: Seeded) -> None:
    with pytest.raises(ValueError, match="negative"):
        await SqlUsageRepository(backend_db).record(seeded.user.id, None, None, "m", -1, 0)
