"""SqlSessionRepository: login sessions (refresh-token families) in SQL."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import insert, select, update

from agent_api.domain.sessions import Session
from agent_api.domain.users import User
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import sessions, users
from agent_api.infrastructure.db.users import user_from_row

_session_columns = [
    sessions.c.id.label("session_id"),
    sessions.c.refresh_jti,
    sessions.c.created_at.label("session_created_at"),
    sessions.c.expires_at,
    sessions.c.revoked_at,
]


class SqlSessionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, session: Session) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(sessions).values(
                    id=session.id,
                    user_id=session.user_id,
                    refresh_jti=session.refresh_jti,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    async def get_active_with_user(
        self, session_id: UUID, now: datetime
    ) -> tuple[Session, User] | None:
        query = (
            select(users, *_session_columns)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.id == session_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        session = Session(
            id=row.session_id,
            user_id=row.id,
            refresh_jti=row.refresh_jti,
            created_at=row.session_created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )
        return session, user_from_row(row)

    async def rotate(
        self, session_id: UUID, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> bool:
        # Compare-and-swap in one statement: of concurrent refreshes with the same token,
        # exactly one matches `old_jti`.
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.refresh_jti == old_jti,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > now,
                )
                .values(refresh_jti=new_jti, refreshed_at=now, expires_at=expires_at)
            )
        return result.rowcount == 1

    async def revoke(self, session_id: UUID, reason: str, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )

    async def revoke_all_for_user(
        self, user_id: UUID, reason: str, now: datetime, *, keep: UUID | None = None
    ) -> int:
        condition = (sessions.c.user_id == user_id) & sessions.c.revoked_at.is_(None)
        if keep is not None:
            condition &= sessions.c.id != keep
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(sessions).where(condition).values(revoked_at=now, revoked_reason=reason)
            )
        return int(result.rowcount)
