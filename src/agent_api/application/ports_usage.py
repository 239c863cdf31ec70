"""Port of the token usage ledger: one row per LLM call, summed into reports.

Part of the ports of `agent_api.application.ports`, under the same contract: a store that
cannot be reached raises `ServiceUnavailable`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple, Protocol
from uuid import UUID

UsageGrouping = Literal["day", "model", "api_key"]


class UsageBucket(NamedTuple):
    """Token totals of one group: `key` is the day (`YYYY-MM-DD`, UTC), the model, or the
    API key id as a string (None for usage through session tokens)."""

    key: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageRepository(Protocol):
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
        """Stores the token usage of one LLM call (at `at`, default now)."""

    async def summarize(
        self,
        user_id: UUID,
        start: datetime,
        end: datetime,
        group_by: UsageGrouping,
        *,
        api_key_id: UUID | None = None,
    ) -> list[UsageBucket]:
        """The user's usage with `start <= time < end` (only through `api_key_id` when given),
        one bucket per group, ordered by key (None first)."""
