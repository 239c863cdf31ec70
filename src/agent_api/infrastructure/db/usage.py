"""SqlUsageRepository: the token usage of every LLM call (`llm_usage`), and its sums."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, insert, select

from agent_api.application.ports_usage import UsageBucket, UsageGrouping
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import llm_usage


class SqlUsageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        user_id: UUID,
        api_key_id: UUID | None,
        conversation_id: UUID | None,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        at: datetime | None = None,
    ) -> None:
        """Raises ValueError for negative token counts (a bug in the caller, not user input)."""
        if prompt_tokens < 0 or completion_tokens < 0:
            raise ValueError("token counts cannot be negative")
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(llm_usage).values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    api_key_id=api_key_id,
                    conversation_id=conversation_id,
                    model=model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                    created_at=(at or datetime.now(UTC)).astimezone(UTC),
                )
            )

    async def summarize(
        self,
        user_id: UUID,
        start: datetime,
        end: datetime,
        group_by: UsageGrouping,
        *,
        api_key_id: UUID | None = None,
    ) -> list[UsageBucket]:
        query = self._summary_query(user_id, start, end, group_by, api_key_id)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        buckets = [
            UsageBucket(
                key=None if row.key is None else str(row.key),
                requests=int(row.requests),
                prompt_tokens=int(row.prompt_tokens or 0),
                completion_tokens=int(row.completion_tokens or 0),
                total_tokens=int(row.total_tokens or 0),
            )
            for row in rows
        ]
        # Sorted here: SQL engines disagree on where NULL sorts.
        return sorted(buckets, key=lambda b: (b.key is not None, b.key or ""))

    def _summary_query(
        self,
        user_id: UUID,
        start: datetime,
        end: datetime,
        group_by: UsageGrouping,
        api_key_id: UUID | None,
    ) -> Select[Any]:
        key = self._group_key(group_by).label("key")
        query = (
            select(
                key,
                func.count().label("requests"),
                func.sum(llm_usage.c.prompt_tokens).label("prompt_tokens"),
                func.sum(llm_usage.c.completion_tokens).label("completion_tokens"),
                func.sum(llm_usage.c.total_tokens).label("total_tokens"),
            )
            .where(
                llm_usage.c.user_id == user_id,
                llm_usage.c.created_at >= start.astimezone(UTC),
                llm_usage.c.created_at < end.astimezone(UTC),
            )
            .group_by(key)
        )
        if api_key_id is not None:
            query = query.where(llm_usage.c.api_key_id == api_key_id)
        return query

    def _group_key(self, group_by: UsageGrouping) -> Any:
        if group_by == "model":
            return llm_usage.c.model
        if group_by == "api_key":
            return llm_usage.c.api_key_id
        # Days are UTC days on both engines (SQLite stores the UTC wall time).
        if self._db.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", llm_usage.c.created_at), "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", llm_usage.c.created_at)
