"""Wire schemas shared by several routers: the base of request bodies, the native envelope,
users, credentials, and the documented error responses. Feature-specific schemas live beside
their router."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from agent_api.domain.credentials import Credential
from agent_api.domain.text import first_unstorable

T = TypeVar("T")

# Model names, tool names and tool call ids are stored in columns of this many characters.
IDENTIFIER_MAX_LENGTH = 100


class RequestModel(BaseModel):
    """The base of every request body. Every field, whatever its type, is refused when a
    string in it (list items, dict keys and values, at any depth) holds a NUL character or a
    lone surrogate: PostgreSQL cannot store them, so they answer 422 (400 on the OpenAI
    surface) naming the field, never 500. Subclasses get this by inheriting. Unknown fields kept
    by `extra="allow"` are not checked: the server ignores them."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any, info: ValidationInfo) -> Any:
        where = first_unstorable(value, info.field_name or "value")
        if where is not None:
            raise ValueError(
                f"{where} contains a character that cannot be stored "
                "(NUL \\u0000 or a lone surrogate)"
            )
        return value


class ResponseModel(BaseModel):
    """The base of response bodies read from a domain object: `Model.model_validate(obj)`
    takes each field from the attribute of the same name. A field whose wire shape differs
    from the domain's says so with a validator or a small constructor of its own."""

    model_config = ConfigDict(from_attributes=True)


class Envelope(BaseModel, Generic[T]):
    """The native success envelope: `{"success": true, "data": ...}`."""

    success: Literal[True] = True
    data: T


class ErrorDetail(BaseModel):
    code: str = Field(examples=["INVALID_TOKEN"])
    message: str = Field(examples=["invalid or expired token"])
    details: Any | None = None


class ErrorEnvelope(BaseModel):
    success: Literal[False] = False
    error: ErrorDetail


class OpenAIErrorObject(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorObject


_ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "malformed JSON body"),
    401: ("INVALID_TOKEN", "invalid or expired token"),
    403: ("FORBIDDEN", "this credential may not do that"),
    404: ("NOT_FOUND", "not found"),
    409: ("CONFLICT", "conflict with the current state"),
    413: ("PAYLOAD_TOO_LARGE", "request body exceeds 20971520 bytes"),
    422: ("VALIDATION_ERROR", "request validation failed"),
    429: ("RATE_LIMITED", "rate limit exceeded"),
    502: ("UPSTREAM_ERROR", "the language model upstream failed"),
    503: ("SERVICE_UNAVAILABLE", "a dependency is unavailable"),
    504: ("UPSTREAM_TIMEOUT", "the language model upstream timed out"),
}


def error_responses(*statuses: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting the error answers a route can give."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, message = _ERROR_EXAMPLES[status]
        if openai:
            example: dict[str, Any] = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": code.lower(),
                }
            }
            model: type[BaseModel] = OpenAIError
        else:
            example = {"success": False, "error": {"code": code, "message": message}}
            model = ErrorEnvelope
        out[status] = {"model": model, "content": {"application/json": {"example": example}}}
    return out


class UserOut(ResponseModel):
    id: UUID
    email: str
    name: str
    role: str
    is_active: bool
    created_at: datetime


class CredentialOut(BaseModel):
    type: Literal["session", "api_key"]
    id: UUID
    allowed_tools: list[str] | None
    allowed_models: list[str] | None
    rate_limit_per_minute: int
    rate_limit_per_day: int
    expires_at: datetime | None
    can_approve: bool = Field(
        description="Whether this credential may decide approvals (always for a session)."
    )

    @classmethod
    def of(
        cls, credential: Credential, default_per_minute: int, default_per_day: int
    ) -> CredentialOut:
        """Names sorted, the server's limits in place of the credential's unset ones."""
        return cls(
            type=credential.type.value,
            id=credential.id,
            allowed_tools=None
            if credential.allowed_tools is None
            else sorted(credential.allowed_tools),
            allowed_models=None
            if credential.allowed_models is None
            else sorted(credential.allowed_models),
            rate_limit_per_minute=credential.rate_limit_per_minute or default_per_minute,
            rate_limit_per_day=credential.rate_limit_per_day or default_per_day,
            expires_at=credential.expires_at,
            can_approve=credential.may_decide_approvals,
        )
