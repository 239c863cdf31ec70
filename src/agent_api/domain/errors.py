"""The one error tree.

Every expected failure is a subclass of `AppError` with a stable machine-readable `code`.
The HTTP status for each branch is decided in one table in the api layer
(`agent_api.api.errors`), never here and never in routers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AppError(Exception):
    """Base of every expected error. `code` is UPPER_SNAKE and part of the API contract."""

    code = "ERROR"
    default_message = "request failed"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


# 400 -----------------------------------------------------------------------------------------
class InvalidRequest(AppError):
    code = "INVALID_REQUEST"
    default_message = "invalid request"

    def __init__(
        self, message: str | None = None, *, param: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message, details=details)
        self.param = param


class InvalidArguments(InvalidRequest):
    code = "INVALID_ARGUMENTS"
    default_message = "invalid tool arguments"


class ContextLengthExceeded(InvalidRequest):
    """The turn cannot fit the model's context window even with every earlier turn left out:
    refused before the model is called. `param` is `messages` (OpenAI's spelling)."""

    code = "CONTEXT_LENGTH_EXCEEDED"
    default_message = "the last message does not fit the model's context window"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        super().__init__(message, param="messages", details=details)


# 422 -----------------------------------------------------------------------------------------
class ValidationFailed(AppError):
    code = "VALIDATION_ERROR"
    default_message = "request validation failed"


class ToolFailed(AppError):
    code = "TOOL_FAILED"
    default_message = "tool failed"


# 401 -----------------------------------------------------------------------------------------
class Unauthenticated(AppError):
    code = "UNAUTHORIZED"
    default_message = "missing or invalid credentials"


class InvalidCredentials(Unauthenticated):
    code = "INVALID_CREDENTIALS"
    default_message = "invalid email or password"


class InvalidToken(Unauthenticated):
    code = "INVALID_TOKEN"
    default_message = "invalid or expired token"


# 403 -----------------------------------------------------------------------------------------
class PermissionDenied(AppError):
    code = "FORBIDDEN"
    default_message = "this credential may not do that"


class ToolForbidden(PermissionDenied):
    code = "TOOL_FORBIDDEN"
    default_message = "this credential may not use that tool"


class RegistrationClosed(PermissionDenied):
    code = "REGISTRATION_CLOSED"
    default_message = "registration is closed; ask an administrator for an account"


class WrongPassword(PermissionDenied):
    code = "WRONG_PASSWORD"
    default_message = "the current password is wrong"


class ModelForbidden(PermissionDenied):
    code = "MODEL_FORBIDDEN"
    default_message = "this credential may not use that model"


class ToolNeedsApproval(PermissionDenied):
    """A tool that waits for a human decision was called outside the agent, where no one
    can decide: it is never run that way."""

    code = "APPROVAL_REQUIRED"
    default_message = "this tool runs only after a human approves it, inside a conversation"


class ApprovalForbidden(PermissionDenied):
    """Approval decisions need a session (a person) or an API key allowed to decide them."""

    code = "APPROVAL_FORBIDDEN"
    default_message = "this credential may not decide approvals"


# 404 -----------------------------------------------------------------------------------------
class NotFound(AppError):
    code = "NOT_FOUND"
    default_message = "not found"


class ToolNotFound(NotFound):
    code = "TOOL_NOT_FOUND"
    default_message = "tool not found"


class ModelNotFound(NotFound):
    code = "MODEL_NOT_FOUND"
    default_message = "model not found"


# 409 -----------------------------------------------------------------------------------------
class Conflict(AppError):
    code = "CONFLICT"
    default_message = "conflict with the current state"


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"
    default_message = "an account with this email already exists"


class ConversationBusy(Conflict):
    code = "CONVERSATION_BUSY"
    default_message = "the conversation is running or waiting for an approval"


class DuplicateRequest(ConversationBusy):
    """A request without a conversation id repeats the one a conversation is running now (a
    client's retry): it must not start a second run."""

    code = "DUPLICATE_REQUEST"
    default_message = "this request is already being answered; wait for its answer"


class ApiKeyLimitReached(Conflict):
    code = "API_KEY_LIMIT_REACHED"
    default_message = "this user has the maximum number of live API keys"


class NotPendingApproval(Conflict):
    code = "NOT_PENDING_APPROVAL"
    default_message = "the conversation has no pending approval"


# 408 -----------------------------------------------------------------------------------------
class RequestTimeout(AppError):
    code = "REQUEST_TIMEOUT"
    default_message = "the request body did not arrive in time"


# 413 -----------------------------------------------------------------------------------------
class PayloadTooLarge(AppError):
    code = "PAYLOAD_TOO_LARGE"
    default_message = "request body too large"


# 429 -----------------------------------------------------------------------------------------
class RateLimited(AppError):
    """`retry_after` in whole seconds. `quota` marks the daily budget, where retrying soon
    cannot help. `headers` are the rate-limit fields the limiter computed for this answer."""

    code = "RATE_LIMITED"
    default_message = "rate limit exceeded"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int,
        quota: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.quota = quota
        self.headers = dict(headers or {})


# 502 / 503 / 504 -----------------------------------------------------------------------------
class UpstreamFailed(AppError):
    code = "UPSTREAM_ERROR"
    default_message = "the language model upstream failed"


class UpstreamTimeout(AppError):
    code = "UPSTREAM_TIMEOUT"
    default_message = "the language model upstream timed out"


class ToolTimeout(AppError):
    code = "TOOL_TIMEOUT"
    default_message = "tool timed out"


class ServiceUnavailable(AppError):
    """A dependency (database, Redis) is down. `retry_after` in seconds."""

    code = "SERVICE_UNAVAILABLE"
    default_message = "a dependency is unavailable"

    def __init__(
        self, message: str | None = None, *, retry_after: int = 5, details: Any = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
