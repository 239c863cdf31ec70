"""SqlUserRepository on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent_api.domain.errors import EmailTaken
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.users import SqlUserRepository
from tests.integration.databases import backend_db, sqlite_db

__all__ = ["backend_db", "sqlite_db"]

NOW = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def make_user(email: str = "ada@example.com", **changes: object) -> User:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "email": email,
        "name": "Ada",
        "role": Role.USER,
        "is_active": True,
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "created_at": NOW,
        "updated_at": NOW,
        **changes,
    }
    return User(**fields)  # type: ignore[arg-type]


async def test_add_then_get_by_id_and_email(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    user = make_user()

    await repo.add(user)

    assert await repo.get(user.id) == user
    assert await repo.get_by_email("ada@example.com") == user


async def test_timestamps_come_back_timezone_aware_utc(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    user = make_user()
    await repo.add(user)
    stored = await repo.get(user.id)
    assert stored is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at == NOW


async def test_a_non_utc_timestamp_keeps_its_instant(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    paris = NOW.astimezone(timezone(timedelta(hours=2)))
    user = make_user(created_at=paris, updated_at=paris)
    await repo.add(user)
    stored = await repo.get(user.id)
    assert stored is not None
    assert stored.created_at == NOW  # the same instant, read back in UTC
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_missing_users_are_none(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    assert await repo.get(uuid.uuid4()) is None
    assert await repo.get_by_email("nobody@example.com") is None


async def test_duplicate_email_is_email_taken(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    first = make_user()
    await repo.add(first)

    with pytest.raises(EmailTaken):
        await repo.add(make_user(name="Another Ada"))

    assert await repo.get_by_email("ada@example.com") == first


async def test_lookup_is_by_the_normalised_email_it_is_given(backend_db: Database) -> None:
    # Normalising is the service's job; the repository compares exactly.
    repo = SqlUserRepository(backend_db)
    await repo.add(make_user())
    assert await repo.get_by_email("ADA@example.com") is None


async def test_role_and_activity_round_trip(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    admin = make_user("root@example.com", role=Role.ADMIN, is_active=False)
    agent = make_user("bot@example.com", role=Role.AGENT)
    await repo.add(admin)
    await repo.add(agent)
    assert await repo.get(admin.id) == admin
    assert await repo.get(agent.id) == agent


async def test_set_password_hash(backend_db: Database) -> None:
    repo = SqlUserRepository(backend_db)
    user = make_user(password_hash="$2a$10$" + "x" * 53)
    other = make_user("other@example.com")
    await repo.add(user)
    await repo.add(other)
    later = NOW + timedelta(days=1)

    await repo.set_password_hash(user.id, "$argon2id$new", later)

    stored = await repo.get(user.id)
    assert stored is not None
    assert stored.password_hash == "$argon2id$new"
    assert stored.updated_at == later
    assert stored.created_at == NOW
    assert await repo.get(other.id) == other
