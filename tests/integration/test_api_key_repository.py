"""SqlApiKeyRepository on PostgreSQL and SQLite: what is stored (the hash, never the key),
owner-scoped listing and revocation, and the throttled `last_used_at` write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from agent_api.domain.api_keys import ApiKey, hash_key
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db.api_keys import SqlApiKeyRepository
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import api_keys
from agent_api.infrastructure.db.users import SqlUserRepository
from tests.integration.databases import backend_db, sqlite_db

__all__ = ["backend_db", "sqlite_db"]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def add_user(db: Database, email: str) -> User:
    user = User(uuid.uuid4(), email, "Ada", Role.USER, True, "x", NOW, NOW)
    await SqlUserRepository(db).add(user)
    return user


async def test_only_the_hash_is_stored_and_the_key_round_trips(backend_db: Database) -> None:
    user = await add_user(backend_db, "ada@example.com")
    repo = SqlApiKeyRepository(backend_db)
    key, secret = ApiKey.issue(
        user_id=user.id,
        name="ci",
        now=NOW,
        allowed_tools=["calculator"],
        allowed_models=[],
        expires_at=NOW + timedelta(days=30),
        rate_limit_per_minute=5,
        rate_limit_per_day=100,
    )
    await repo.add(key)

    async with backend_db.connect() as conn:
        rows = (await conn.execute(select(api_keys).where(api_keys.c.user_id == user.id))).all()
    assert len(rows) == 1
    assert rows[0].key_hash == hash_key(secret)
    assert not any(secret in str(value) for value in rows[0])

    found = await repo.get_by_hash_with_user(hash_key(secret))
    assert found is not None
    assert found[0] == key
    assert found[1].id == user.id
    assert await repo.get_by_hash_with_user(hash_key(secret + "x")) is None


async def test_listing_and_revoking_are_owner_scoped(backend_db: Database) -> None:
    ada = await add_user(backend_db, "ada@example.com")
    bob = await add_user(backend_db, "bob@example.com")
    repo = SqlApiKeyRepository(backend_db)
    older, _ = ApiKey.issue(user_id=ada.id, name="older", now=NOW)
    newer, _ = ApiKey.issue(user_id=ada.id, name="newer", now=NOW + timedelta(seconds=1))
    bobs, _ = ApiKey.issue(user_id=bob.id, name="bob's", now=NOW)
    for key in (older, newer, bobs):
        await repo.add(key)

    assert [k.name for k in await repo.list_for_user(ada.id)] == ["newer", "older"]
    assert not await repo.revoke(bob.id, older.id, NOW)
    assert not await repo.revoke(ada.id, uuid.uuid4(), NOW)
    assert await repo.revoke(ada.id, older.id, NOW + timedelta(minutes=1))
    assert await repo.revoke(ada.id, older.id, NOW + timedelta(minutes=2))  # idempotent
    listed = {k.name: k for k in await repo.list_for_user(ada.id)}
    assert listed["older"].revoked_at == NOW + timedelta(minutes=1)
    assert listed["newer"].revoked_at is None
    assert (await repo.list_for_user(bob.id))[0].revoked_at is None


async def test_last_used_is_written_once_per_minute_across_replicas(backend_db: Database) -> None:
    user = await add_user(backend_db, "ada@example.com")
    key, secret = ApiKey.issue(user_id=user.id, name="k", now=NOW)
    await SqlApiKeyRepository(backend_db).add(key)

    async def last_used() -> datetime | None:
        found = await SqlApiKeyRepository(backend_db).get_by_hash_with_user(hash_key(secret))
        assert found is not None
        return found[0].last_used_at

    # Two replicas (two repositories, no shared memory): the conditional UPDATE decides.
    first, second = SqlApiKeyRepository(backend_db), SqlApiKeyRepository(backend_db)
    await first.touch_last_used(key.id, NOW)
    await second.touch_last_used(key.id, NOW + timedelta(seconds=59))
    assert await last_used() == NOW
    third = SqlApiKeyRepository(backend_db)
    await third.touch_last_used(key.id, NOW + timedelta(seconds=60))
    assert await last_used() == NOW + timedelta(seconds=60)

    # Within one process, a key touched less than a minute ago is not even tried again.
    async with backend_db.transaction() as conn:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key.id).values(last_used_at=None)
        )
    await third.touch_last_used(key.id, NOW + timedelta(seconds=90))
    assert await last_used() is None
    await third.touch_last_used(key.id, NOW + timedelta(seconds=120))
    assert await last_used() == NOW + timedelta(seconds=120)


async def test_live_key_count_leaves_out_revoked_expired_and_other_users(
    backend_db: Database,
) -> None:
    ada = await add_user(backend_db, "ada@example.com")
    bob = await add_user(backend_db, "bob@example.com")
    repo = SqlApiKeyRepository(backend_db)
    for name, expires_at in [("forever", None), ("soon", NOW + timedelta(hours=1))]:
        key, _ = ApiKey.issue(user_id=ada.id, name=name, now=NOW, expires_at=expires_at)
        await repo.add(key)
    revoked, _ = ApiKey.issue(user_id=ada.id, name="revoked", now=NOW)
    await repo.add(revoked)
    await repo.revoke(ada.id, revoked.id, NOW)
    await repo.add(ApiKey.issue(user_id=bob.id, name="bob's", now=NOW)[0])

    assert await repo.count_live_for_user(ada.id, NOW) == 2
    assert await repo.count_live_for_user(ada.id, NOW + timedelta(hours=1)) == 1
    assert await repo.count_live_for_user(bob.id, NOW) == 1
    assert await repo.count_live_for_user(uuid.uuid4(), NOW) == 0
