"""API keys: create (the secret is shown this once), list, revoke. Session tokens only."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from agent_api.api.deps import ApiKeysDep, SessionPrincipal
from agent_api.api.routers.api_keys_schemas import (
    ApiKeyList,
    ApiKeyOut,
    CreateApiKeyRequest,
    CreatedApiKey,
)
from agent_api.api.schemas import Envelope, error_responses

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


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
    return Envelope(
        data=CreatedApiKey(api_key=ApiKeyOut.model_validate(created.api_key), key=created.secret)
    )


@router.get(
    "",
    summary="List your API keys (by prefix; revoked ones included)",
    responses=error_responses(401, 403, 429),
)
async def list_api_keys(principal: SessionPrincipal, api_keys: ApiKeysDep) -> Envelope[ApiKeyList]:
    keys = await api_keys.list(principal)
    return Envelope(data=ApiKeyList(api_keys=[ApiKeyOut.model_validate(key) for key in keys]))


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
