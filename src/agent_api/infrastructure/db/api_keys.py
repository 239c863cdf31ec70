"""SqlApiKeyRepository: API keys in SQL (looked up by the SHA-256 of the raw key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, or_, select, update

from agent_api.domain.api_keys import LAST_USED_RESOLUTION, ApiKey
from agent_api.domain.users import User
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import api_keys, users
from agent_api.infrastructure.db.users import user_from_row

_key_columns = [c.label(f"key_{c.name}") for c in api_keys.c]


def api_key_from_row(row: Any, prefix: str = "") -> ApiKey:
    """An `api_keys` row -> ApiKey; `prefix` for joined rows whose key columns are labelled."""

    def col(name: str) -> Any:
        return getattr(row, prefix + name)

    return ApiKey(
        id=col("id"),
        user_id=col("user_id"),
        name=col("name"),
        prefix=col("prefix"),
        key_hash=col("key_hash"),
        created_at=col("created_at"),
        allowed_tools=col("allowed_tools"),
        allowed_models=col("allowed_models"),
        rate_limit_per_minute=col("rate_limit_per_minute"),
        rate_limit_per_day=col("rate_limit_per_day"),
        expires_at=col("expires_at"),
        last_used_at=col("last_used_at"),
        revoked_at=col("revoked_at"),
        can_approve=col("can_approve"),
    )


class SqlApiKeyRepository:
    # Bounds the in-process memory of recently touched keys (it is only an optimisation).
    _TOUCHED_MAX = 10_000

    def __init__(self, db: Database) -> None:
        self._db = db
        # key id -> when this process last touched it.
        self._touched: dict[UUID, datetime] = {}

    async def add(self, key: ApiKey) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    user_id=key.user_id,
                    name=key.name,
                    prefix=key.prefix,
                    key_hash=key.key_hash,
                    allowed_tools=key.allowed_tools,
                    allowed_models=key.allowed_models,
                    rate_limit_per_minute=key.rate_limit_per_minute,
                    rate_limit_per_day=key.rate_limit_per_day,
                    expires_at=key.expires_at,
                    last_used_at=key.last_used_at,
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                    can_approve=key.can_approve,
                )
            )

    async def list_for_user(self, user_id: UUID) -> list[ApiKey]:
        query = (
            select(api_keys)
            .where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [api_key_from_row(row) for row in rows]

    async def revoke(self, user_id: UUID, key_id: UUID, now: datetime) -> bool:
        owned = (api_keys.c.id == key_id) & (api_keys.c.user_id == user_id)
        async with self._db.transaction() as conn:
            await conn.execute(
                update(api_keys)
                .where(owned, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            found = (await conn.execute(select(api_keys.c.id).where(owned))).first()
        return found is not None

    async def revoke_all_for_user(self, user_id: UUID, now: datetime) -> int:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return int(result.rowcount)

    async def count_live_for_user(self, user_id: UUID, now: datetime) -> int:
        query = select(func.count()).where(
            api_keys.c.user_id == user_id,
            api_keys.c.revoked_at.is_(None),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
        )
        async with self._db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def touch_last_used(self, key_id: UUID, now: datetime) -> None:
        # The conditional UPDATE makes this safe across replicas (at most one write per key
        # per resolution wins); the in-process memory spares even the statement when a burst
        # of requests with one key arrives together.
        last = self._touched.get(key_id)
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        if len(self._touched) >= self._TOUCHED_MAX:
            self._touched.clear()
        self._touched[key_id] = now
        async with self._db.transaction() as conn:
            await conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    or_(
                        api_keys.c.last_used_at.is_(None),
                        api_keys.c.last_used_at <= now - LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
            )

    async def get_by_hash_with_user(self, key_hash: str) -> tuple[ApiKey, User] | None:
        query = (
            select(users, *_key_columns)
            .join(api_keys, api_keys.c.user_id == users.c.id)
            .where(api_keys.c.key_hash == key_hash)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return api_key_from_row(row, "key_"), user_from_row(row)
