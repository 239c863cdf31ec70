"""SqlSessionRepository on PostgreSQL and SQLite, and the compare-and-swap of `rotate` under
real concurrency on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_api.domain.sessions import Session
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import sessions, users
from agent_api.infrastructure.db.sessions import SqlSessionRepository
from agent_api.infrastructure.db.users import SqlUserRepository
from tests.integration.databases import backend_db, sqlite_db

__all__ = ["backend_db", "sqlite_db"]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
TTL = timedelta(days=7)


async def add_user(db: Database, email: str = "ada@example.com") -> User:
    user = User(
        id=uuid.uuid4(),
        email=email,
        name="Ada",
        role=Role.USER,
        is_active=True,
        password_hash="x",
        created_at=NOW,
        updated_at=NOW,
    )
    await SqlUserRepository(db).add(user)
    return user


async def add_session(db: Database, user: User, jti: str = "jti-1") -> Session:
    session = Session(
        id=uuid.uuid4(), user_id=user.id, refresh_jti=jti, created_at=NOW, expires_at=NOW + TTL
    )
    await SqlSessionRepository(db).add(session)
    return session


async def session_row(db: Database, session_id: uuid.UUID) -> dict[str, object]:
    async with db.connect() as conn:
        row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).one()
    return dict(row._mapping)


async def test_add_then_get_active_with_user(backend_db: Database) -> None:
    user = await add_user(backend_db)
    session = await add_session(backend_db, user)

    found = await SqlSessionRepository(backend_db).get_active_with_user(session.id, LATER)

    assert found == (session, user)


async def test_missing_session_is_none(backend_db: Database) -> None:
    repo = SqlSessionRepository(backend_db)
    assert await repo.get_active_with_user(uuid.uuid4(), NOW) is None


async def test_expired_session_is_not_active(backend_db: Database) -> None:
    session = await add_session(backend_db, await add_user(backend_db))
    repo = SqlSessionRepository(backend_db)
    assert await repo.get_active_with_user(session.id, session.expires_at) is None
    almost = session.expires_at - timedelta(microseconds=1)
    assert await repo.get_active_with_user(session.id, almost) is not None


async def test_revoked_session_is_not_active(backend_db: Database) -> None:
    session = await add_session(backend_db, await add_user(backend_db))
    repo = SqlSessionRepository(backend_db)
    await repo.revoke(session.id, "logout", LATER)
    assert await repo.get_active_with_user(session.id, LATER) is None


async def test_revoke_keeps_the_first_revocation(backend_db: Database) -> None:
    session = await add_session(backend_db, await add_user(backend_db))
    repo = SqlSessionRepository(backend_db)

    await repo.revoke(session.id, "logout", LATER)
    await repo.revoke(session.id, "refresh_token_reuse", LATER + timedelta(minutes=5))

    row = await session_row(backend_db, session.id)
    assert row["revoked_reason"] == "logout"
    assert row["revoked_at"] == LATER


async def test_revoke_touches_only_its_session(backend_db: Database) -> None:
    user = await add_user(backend_db)
    mine, other = await add_session(backend_db, user), await add_session(backend_db, user)
    repo = SqlSessionRepository(backend_db)
    await repo.revoke(mine.id, "logout", LATER)
    assert await repo.get_active_with_user(other.id, LATER) is not None


async def test_rotate_swaps_the_current_jti(backend_db: Database) -> None:
    session = await add_session(backend_db, await add_user(backend_db), jti="jti-1")
    repo = SqlSessionRepository(backend_db)
    new_expiry = LATER + TTL

    assert await repo.rotate(session.id, "jti-1", "jti-2", new_expiry, LATER)

    row = await session_row(backend_db, session.id)
    assert row["refresh_jti"] == "jti-2"
    assert row["refreshed_at"] == LATER
    assert row["expires_at"] == new_expiry
    # The old jti is spent: presenting it again does not rotate.
    assert not await repo.rotate(session.id, "jti-1", "jti-3", new_expiry, LATER)
    assert (await session_row(backend_db, session.id))["refresh_jti"] == "jti-2"


async def test_rotate_refuses_a_jti_that_was_never_current(backend_db: Database) -> None:
    session = await add_session(backend_db, await add_user(backend_db), jti="jti-1")
    repo = SqlSessionRepository(backend_db)
    assert not await repo.rotate(session.id, "forged", "jti-2", LATER + TTL, LATER)
    assert not await repo.rotate(uuid.uuid4(), "jti-1", "jti-2", LATER + TTL, LATER)


async def test_rotate_refuses_revoked_and_expired_sessions(backend_db: Database) -> None:
    user = await add_user(backend_db)
    revoked = await add_session(backend_db, user, jti="a")
    expired = await add_session(backend_db, user, jti="b")
    repo = SqlSessionRepository(backend_db)
    await repo.revoke(revoked.id, "logout", LATER)

    assert not await repo.rotate(revoked.id, "a", "a2", LATER + TTL, LATER)
    assert not await repo.rotate(expired.id, "b", "b2", NOW + TTL * 2, NOW + TTL)


async def test_sessions_go_with_their_user(backend_db: Database) -> None:
    user = await add_user(backend_db)
    session = await add_session(backend_db, user)
    async with backend_db.transaction() as conn:
        await conn.execute(delete(users).where(users.c.id == user.id))
    async with backend_db.connect() as conn:
        left = (await conn.execute(select(sessions).where(sessions.c.id == session.id))).first()
    assert left is None


async def test_concurrent_rotations_of_one_token_have_exactly_one_winner(
    pg_engine: AsyncEngine,
) -> None:
    # A real engine (not the rolled-back fixture): each rotation gets its own connection and
    # transaction, racing on the same row.
    db = Database(pg_engine)
    user = await add_user(db, f"race-{uuid.uuid4().hex}@example.com")
    try:
        session = await add_session(db, user, jti="contested")
        repo = SqlSessionRepository(db)
        contenders = [f"new-{i}" for i in range(8)]

        results = await asyncio.gather(
            *(repo.rotate(session.id, "contested", new, LATER + TTL, LATER) for new in contenders)
        )

        assert results.count(True) == 1
        winner = contenders[results.index(True)]
        assert (await session_row(db, session.id))["refresh_jti"] == winner
    finally:
        async with db.transaction() as conn:
            await conn.execute(delete(users).where(users.c.id == user.id))
