"""Wire schemas of API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent_api.api.schemas import RequestModel, ResponseModel
from agent_api.application.api_keys import KeySpec
from agent_api.domain.api_keys import (
    LIST_ITEM_MAX_LENGTH,
    MAX_LIST_ITEMS,
    NAME_MAX_LENGTH,
)

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LIST_ITEM_MAX_LENGTH)
]
NameList = Annotated[
    Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)] | Literal["*"] | None,
    Field(
        description='Names allowed: `null` or absent = all, `[]` = none, `"*"` (or `["*"]`) = all.',
    ),
]


class CreateApiKeyRequest(RequestModel):
    # Unknown fields are refused: a misspelt `allowed_tools` would otherwise silently grant
    # every tool.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ci-bot",
                    "allowed_tools": ["calculator"],
                    "allowed_models": ["gpt-4o-mini"],
                    "expires_at": "2030-01-01T00:00:00Z",
                    "rate_limit_per_minute": 30,
                }
            ]
        },
    )

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)
    ]
    allowed_tools: NameList = None
    allowed_models: NameList = None
    expires_at: datetime | None = Field(
        None, description="Must be in the future; a time without offset is UTC."
    )
    rate_limit_per_minute: int | None = Field(
        None,
        ge=1,
        description="Default: RATE_LIMIT_PER_MINUTE; at most RATE_LIMIT_MAX_PER_MINUTE (422).",
    )
    rate_limit_per_day: int | None = Field(
        None,
        ge=1,
        description="Default: RATE_LIMIT_PER_DAY; at most RATE_LIMIT_MAX_PER_DAY (422).",
    )
    can_approve: bool = Field(
        False,
        description="Whether the key may decide approvals (`POST /v1/conversations/{id}/"
        "approve`). Off by default: a program holding the key could otherwise approve the "
        "calls its own runs paused on.",
    )

    def spec(self) -> KeySpec:
        def names(value: list[str] | Literal["*"] | None) -> list[str] | None:
            return ["*"] if value == "*" else value

        return KeySpec(
            name=self.name,
            allowed_tools=names(self.allowed_tools),
            allowed_models=names(self.allowed_models),
            expires_at=self.expires_at,
            rate_limit_per_minute=self.rate_limit_per_minute,
            rate_limit_per_day=self.rate_limit_per_day,
            can_approve=self.can_approve,
        )


class ApiKeyOut(ResponseModel):
    id: UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    allowed_tools: list[str] | None
    allowed_models: list[str] | None
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    rate_limit_per_minute: int | None = Field(description="`null` = the server default.")
    rate_limit_per_day: int | None = Field(description="`null` = the server default.")
    can_approve: bool = Field(description="Whether the key may decide approvals.")
    created_at: datetime
    revoked_at: datetime | None


class CreatedApiKey(BaseModel):
    api_key: ApiKeyOut
    key: str = Field(description="The secret (`sk-...`). Shown this once: store it now.")


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]
