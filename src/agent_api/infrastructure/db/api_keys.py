"""SqlApiKeyRepository: API keys in SQL (looked up by the SHA-256 of the raw key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from agent_api.domain.api_keys import ApiKey
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
    )


class SqlApiKeyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

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
