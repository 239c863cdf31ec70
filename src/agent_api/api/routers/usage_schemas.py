"""Wire schemas of token usage."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from agent_api.api.schemas import ResponseModel
from agent_api.application.ports_usage import UsageGrouping


class UsageTotals(ResponseModel):
    requests: int = Field(description="LLM calls")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageGroup(UsageTotals):
    key: str | None = Field(
        description="The UTC day (`YYYY-MM-DD`), the model, or the API key id "
        "(`null` = through session tokens)."
    )


class UsagePayload(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    group_by: UsageGrouping
    totals: UsageTotals
    groups: list[UsageGroup]
