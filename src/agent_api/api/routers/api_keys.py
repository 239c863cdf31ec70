"""API keys: create (the secret is shown this once), list, revoke. Session tokens only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent_api.api.deps import ApiKeysDep, SessionPrincipal
from agent_api.api.schemas import Envelope, RequestModel, error_responses
from agent_api.application.api_keys import KeySpec
from agent_api.domain.api_keys import (
    LIST_ITEM_MAX_LENGTH,
    MAX_LIST_ITEMS,
    NAME_MAX_LENGTH,
    ApiKey,
)

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])

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


class ApiKeyOut(BaseModel):
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

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            allowed_tools=key.allowed_tools,
            allowed_models=key.allowed_models,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            rate_limit_per_minute=key.rate_limit_per_minute,
            rate_limit_per_day=key.rate_limit_per_day,
            can_approve=key.can_approve,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class CreatedApiKey(BaseModel):
    api_key: ApiKeyOut
    key: str = Field(description="The secret (`sk-...`). Shown this once: store it now.")


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (the secret is returned this once)",
    description="Needs a session token (an API key gets 403). Only the key's SHA-256 is "
    "stored: the `key` in this answer cannot be shown again. A user has at most "
    "`API_KEYS_MAX_PER_USER` live (not revoked, not expired) keys: one more is 409 "
    "`API_KEY_LIMIT_REACHED`. Limits above the server's maximums are 422 naming the field.",
    responses=error_responses(400, 401, 403, 409, 413, 422, 429),
)
async def create_api_key(
    body: CreateApiKeyRequest, principal: SessionPrincipal, api_keys: ApiKeysDep
) -> Envelope[CreatedApiKey]:
    created = await api_keys.create(principal, body.spec())
    return Envelope(data=CreatedApiKey(api_key=ApiKeyOut.of(created.api_key), key=created.secret))


@router.get(
    "",
    summary="List your API keys (by prefix; revoked ones included)",
    responses=error_responses(401, 403, 429),
)
async def list_api_keys(principal: SessionPrincipal, api_keys: ApiKeysDep) -> Envelope[ApiKeyList]:
    keys = await api_keys.list(principal)
    return Envelope(data=ApiKeyList(api_keys=[ApiKeyOut.of(key) for key in keys]))


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    description="The key fails from its next request on. Revoking a revoked key is a no-op; "
    "a key that is not yours is 404.",
    responses=error_responses(401, 403, 404, 422, 429),
)
async def revoke_api_key(
    key_id: UUID, principal: SessionPrincipal, api_keys: ApiKeysDep
) -> Response:
    await api_keys.revoke(principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
