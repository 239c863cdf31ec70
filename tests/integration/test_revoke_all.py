"""Revoking everything a user holds, on PostgreSQL and SQLite: every live session but the
kept one (first revocations preserved), every key of the user, nobody else's."""

from __future__ import annotations

from datetime import timedelta

from agent_api.domain.api_keys import ApiKey
from agent_api.infrastructure.db.api_keys import SqlApiKeyRepository
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.sessions import SqlSessionRepository
from tests.integration.databases import backend_db, sqlite_db
from tests.integration.test_session_repository import NOW, add_session, add_user, session_row

__all__ = ["backend_db", "sqlite_db"]

LATER = NOW + timedelta(minutes=5)


async def test_revoke_all_sessions_of_a_user_but_the_kept_one(backend_db: Database) -> None:
    repo = SqlSessionRepository(backend_db)
    ada = await add_user(backend_db, "ada@example.com")
    bob = await add_user(backend_db, "bob@example.com")
    kept, other, old = [await add_session(backend_db, ada, f"jti-{i}") for i in range(3)]
    bobs = await add_session(backend_db, bob)
    await repo.revoke(old.id, "logout", NOW)

    assert await repo.revoke_all_for_user(ada.id, "password_changed", LATER, keep=kept.id) == 1

    assert (await session_row(backend_db, other.id))["revoked_reason"] == "password_changed"
    assert (await session_row(backend_db, old.id))["revoked_reason"] == "logout"
    assert (await session_row(backend_db, old.id))["revoked_at"] == NOW
    assert await repo.get_active_with_user(kept.id, LATER) is not None
    assert await repo.get_active_with_user(bobs.id, LATER) is not None

    assert await repo.revoke_all_for_user(ada.id, "logout_all", LATER) == 1
    assert await repo.get_active_with_user(kept.id, LATER) is None


async def test_revoke_all_api_keys_of_a_user(backend_db: Database) -> None:
    repo = SqlApiKeyRepository(backend_db)
    ada = await add_user(backend_db, "ada@example.com")
    bob = await add_user(backend_db, "bob@example.com")
    keys = []
    for owner in (ada, ada, bob):
        key, _ = ApiKey.issue(user_id=owner.id, name="k", now=NOW)
        await repo.add(key)
        keys.append(key)
    await repo.revoke(ada.id, keys[0].id, NOW)

    assert await repo.revoke_all_for_user(ada.id, LATER) == 1

    by_id = {k.id: k for k in await repo.list_for_user(ada.id)}
    assert by_id[keys[0].id].revoked_at == NOW
    assert by_id[keys[1].id].revoked_at == LATER
    assert (await repo.list_for_user(bob.id))[0].revoked_at is None
