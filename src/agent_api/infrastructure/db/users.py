"""SqlUserRepository: users in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy.exc
from sqlalchemy import insert, select, update

from agent_api.domain.errors import EmailTaken
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import users


def user_from_row(row: Any) -> User:
    """A `users` row (or a joined row carrying the same column names) -> User."""
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        is_active=row.is_active,
        password_hash=row.password_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlUserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user: User) -> None:
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        name=user.name,
                        role=user.role.value,
                        is_active=user.is_active,
                        password_hash=user.password_hash,
                        created_at=user.created_at,
                        updated_at=user.updated_at,
                    )
                )
        except sqlalchemy.exc.IntegrityError as exc:
            raise EmailTaken() from exc

    async def get(self, user_id: UUID) -> User | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return user_from_row(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.email == email))).first()
        return user_from_row(row) if row else None

    async def set_password_hash(self, user_id: UUID, password_hash: str, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_at=now)
            )
