"""The one error table: every branch of the domain error tree has a status (never 500), and
the two wire formats (native envelope, OpenAI error object) are built from it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_api.api import errors as api_errors
from agent_api.api.errors import error_response, internal_error_body, openai_error, status_for
from agent_api.domain import errors as e


def all_subclasses(cls: type[e.AppError]) -> list[type[e.AppError]]:
    found: list[type[e.AppError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found


def instantiate(cls: type[e.AppError]) -> e.AppError:
    if issubclass(cls, e.RateLimited):
        return cls(retry_after=3)
    return cls()


def body(response: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(response.body)
    return result


ERROR_CLASSES = sorted(all_subclasses(e.AppError), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_has_a_status_that_is_not_500(cls: type[e.AppError]) -> None:
    # A new branch of the tree needs its row in the table; falling back to 500 would turn an
    # expected error into an "internal error".
    status = status_for(instantiate(cls))
    assert 400 <= status < 500 or status in (502, 503, 504)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_has_an_upper_snake_code(cls: type[e.AppError]) -> None:
    assert cls.code.isupper()
    assert " " not in cls.code
    assert cls.code != e.AppError.code


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in ERROR_CLASSES]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (e.InvalidRequest(), 400),
        (e.InvalidArguments(), 400),
        (e.Unauthenticated(), 401),
        (e.InvalidCredentials(), 401),
        (e.InvalidToken(), 401),
        (e.PermissionDenied(), 403),
        (e.ToolForbidden(), 403),
        (e.ModelForbidden(), 403),
        (e.NotFound(), 404),
        (e.ToolNotFound(), 404),
        (e.ModelNotFound(), 404),
        (api_errors.MethodNotAllowed(), 405),
        (e.Conflict(), 409),
        (e.EmailTaken(), 409),
        (e.ConversationBusy(), 409),
        (e.NotPendingApproval(), 409),
        (e.PayloadTooLarge(), 413),
        (e.ValidationFailed(), 422),
        (e.ToolFailed(), 422),
        (e.RateLimited(retry_after=1), 429),
        (e.UpstreamFailed(), 502),
        (e.ServiceUnavailable(), 503),
        (e.UpstreamTimeout(), 504),
        (e.ToolTimeout(), 504),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, e.AppError) else str(v),
)
def test_status_table(error: e.AppError, status: int) -> None:
    assert status_for(error) == status


def test_subclasses_inherit_their_branch_status() -> None:
    class NewKindOfNotFound(e.NotFound):
        code = "SOMETHING_NOT_FOUND"

    assert status_for(NewKindOfNotFound()) == 404
    assert status_for(e.AppError()) == 500  # the bare base is not an expected error


def test_native_envelope() -> None:
    response = error_response(
        "/v1/auth/register",
        e.ValidationFailed("bad", details=[{"field": "email", "message": "not an email"}]),
    )
    assert response.status_code == 422
    assert body(response) == {
        "success": False,
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "bad",
            "details": [{"field": "email", "message": "not an email"}],
        },
    }


def test_native_envelope_omits_absent_details() -> None:
    assert body(error_response("/v1/auth/me", e.InvalidToken())) == {
        "success": False,
        "error": {"code": "INVALID_TOKEN", "message": "invalid or expired token"},
    }


def test_openai_format_on_openai_paths() -> None:
    response = error_response("/v1/chat/completions", e.InvalidToken("token expired"))
    assert response.status_code == 401
    assert body(response) == {
        "error": {
            "message": "token expired",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_openai_format_carries_the_param() -> None:
    response = error_response("/v1/chat/completions", e.InvalidRequest("bad", param="messages"))
    assert body(response)["error"] == {
        "message": "bad",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "invalid_request",
    }


@pytest.mark.parametrize(
    ("path", "openai"),
    [
        ("/v1/chat/completions", True),
        ("/v1/models", True),
        ("/v1/models/gpt-4o", True),
        ("/v1/embeddings", True),
        ("/v1/responses", True),
        ("/v1/no-such-thing", True),
        ("/v1/toolsx", True),
        ("/v1/auth/login", False),
        ("/v1/api-keys", False),
        ("/v1/conversations", False),
        ("/v1/conversations/abc/nope", False),
        ("/v1/tools/execute", False),
        ("/v1/usage", False),
        ("/health", False),
        ("/nope", False),
        ("/v1", False),
    ],
)
def test_the_surface_is_decided_by_the_path(path: str, openai: bool) -> None:
    assert api_errors.is_openai_path(path) is openai


def test_rate_limited_headers() -> None:
    error = e.RateLimited(retry_after=0, headers={"X-RateLimit-Limit": "60"})
    response = error_response("/v1/tools", error)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"  # never 0: clients would hammer
    assert response.headers["x-ratelimit-limit"] == "60"
    assert "x-should-retry" not in response.headers


def test_daily_quota_is_insufficient_quota_on_the_openai_surface() -> None:
    quota = e.RateLimited(retry_after=3600, quota=True)
    openai = error_response("/v1/chat/completions", quota)
    assert openai.headers["x-should-retry"] == "false"
    assert body(openai)["error"]["type"] == "insufficient_quota"
    assert body(openai)["error"]["code"] == "insufficient_quota"
    native = error_response("/v1/tools/execute", quota)
    assert body(native)["error"]["code"] == "RATE_LIMITED"


def test_service_unavailable_has_retry_after() -> None:
    response = error_response("/ready", e.ServiceUnavailable(retry_after=7))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize("error", [e.ConversationBusy(), e.UpstreamFailed()])
def test_no_retry_hint_where_retrying_cannot_help(error: e.AppError) -> None:
    assert error_response("/v1/conversations/x/messages", error).headers["x-should-retry"] == (
        "false"
    )


@pytest.mark.parametrize(
    ("status", "err_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (502, "server_error"),
    ],
)
def test_openai_error_types(status: int, err_type: str) -> None:
    assert openai_error(status, "WHATEVER", "m")["error"]["type"] == err_type


def test_internal_error_body_names_only_the_request_id() -> None:
    native = internal_error_body("/v1/auth/me", "req-123")
    assert native == {
        "success": False,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "internal server error (request id req-123)",
        },
    }
    openai = internal_error_body("/v1/chat/completions", "req-123")
    assert openai["error"]["type"] == "server_error"
    assert "req-123" in openai["error"]["message"]
