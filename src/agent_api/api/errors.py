"""The one error table: domain errors -> HTTP status, and the two error body formats.

Native routes answer `{"success": false, "error": {"code", "message", "details"?}}`; the
OpenAI-compatible routes answer `{"error": {"message", "type", "param", "code"}}`. Which one is
decided by the path alone, so 404/405/413/422 and unexpected 500s use the right format too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_api.domain import errors as e


class MethodNotAllowed(e.AppError):
    """A transport-level error with no domain meaning: lives here, not in the domain tree."""

    code = "METHOD_NOT_ALLOWED"
    default_message = "method not allowed"


STATUS: dict[type[e.AppError], int] = {
    MethodNotAllowed: 405,
    e.InvalidRequest: 400,
    e.Unauthenticated: 401,
    e.PermissionDenied: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.RequestTimeout: 408,
    e.PayloadTooLarge: 413,
    e.ValidationFailed: 422,
    e.ToolFailed: 422,
    e.RateLimited: 429,
    e.UpstreamFailed: 502,
    e.ServiceUnavailable: 503,
    e.UpstreamTimeout: 504,
    e.ToolTimeout: 504,
}

_HTTP_CODES = {
    400: e.InvalidRequest,
    401: e.Unauthenticated,
    403: e.PermissionDenied,
    404: e.NotFound,
    405: MethodNotAllowed,
    408: e.RequestTimeout,
    409: e.Conflict,
    413: e.PayloadTooLarge,
}

# OpenAI `type` per status, and `code` where OpenAI clients look for a specific value.
_OPENAI_TYPE = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_OPENAI_CODE = {
    "UNAUTHORIZED": "invalid_api_key",
    "INVALID_TOKEN": "invalid_api_key",
    "RATE_LIMITED": "rate_limit_exceeded",
}
# The native API's route groups under `/v1`; everything else under `/v1/` is the OpenAI
# surface, including routes this server does not have (`/v1/embeddings`, `/v1/files`...), so an
# OpenAI client always gets an error it can read.
NATIVE_V1_GROUPS = frozenset({"auth", "api-keys", "conversations", "tools", "usage"})


def status_for(exc: e.AppError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def is_openai_path(path: str) -> bool:
    """True for paths of the OpenAI surface: `/v1/...` outside the native groups (matched by
    whole path segment: `/v1/tools/x` is native, `/v1/toolsx` is not)."""
    if not path.startswith("/v1/"):
        return False
    group = path[len("/v1/") :].split("/", 1)[0]
    return group not in NATIVE_V1_GROUPS


def openai_error(
    status: int, code: str, message: str, param: str | None = None, err_type: str | None = None
) -> dict[str, Any]:
    """An OpenAI error object for `status` and our UPPER_SNAKE `code`."""
    if err_type is None:
        err_type = (
            "server_error" if status >= 500 else _OPENAI_TYPE.get(status, "invalid_request_error")
        )
    return {
        "error": {
            "message": message,
            "type": err_type,
            "param": param,
            "code": _OPENAI_CODE.get(code, code.lower()),
        }
    }


def openai_error_for(exc: e.AppError) -> dict[str, Any]:
    """The OpenAI error object of an AppError, before or during a stream alike."""
    status = status_for(exc)
    if isinstance(exc, e.RateLimited) and exc.quota:
        # OpenAI's own spelling for an exhausted budget, which clients check for.
        return openai_error(
            status, "insufficient_quota", exc.message, err_type="insufficient_quota"
        )
    param = exc.param if isinstance(exc, e.InvalidRequest) else None
    return openai_error(status, exc.code, exc.message, param)


def error_response(request_path: str, exc: e.AppError) -> JSONResponse:
    """The response for an AppError on the surface that `request_path` belongs to."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, e.RateLimited):
        headers.update(exc.headers)
        headers["Retry-After"] = str(exc.retry_after)
        if exc.quota:
            headers["x-should-retry"] = "false"
    elif isinstance(exc, e.ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, e.Conflict | e.UpstreamFailed) and status in (409, 502):
        # Retrying a busy conversation or a failed upstream right away will not help.
        headers["x-should-retry"] = "false"
    elif isinstance(exc, e.UpstreamTimeout) and is_openai_path(request_path):
        # The run had begun (only a run calls the upstream) and is over: an SDK's automatic
        # retry would run the agent again from the start, for the same timeout.
        headers["x-should-retry"] = "false"
    if is_openai_path(request_path):
        body = openai_error_for(exc)
    else:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details is not None:
            error["details"] = exc.details
        body = {"success": False, "error": error}
    return JSONResponse(body, status_code=status, headers=headers)


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "list_type", "model_type"})


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _unknown(error: Any) -> bool:
    return bool(error.get("type") == "extra_forbidden")


def _validation_error(request: Request, exc: RequestValidationError) -> e.AppError:
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return e.InvalidRequest("malformed JSON body")
    if any(tuple(err["loc"]) == ("body",) and err.get("type") in _NOT_AN_OBJECT for err in errors):
        # A body that is not JSON at all (e.g. sent as a form) or not the JSON type expected.
        return e.InvalidRequest("the request body must be JSON of the documented shape")
    details = [{"field": _field(tuple(err["loc"])), "message": err["msg"]} for err in errors]
    if is_openai_path(request.url.path):
        unknown = next((d for d, err in zip(details, errors, strict=True) if _unknown(err)), None)
        if unknown is not None:  # OpenAI's own words for a field it does not know
            message = f"Unrecognized request argument supplied: {unknown['field']}"
            return e.InvalidRequest(message, param=unknown["field"])
        first = details[0] if details else {"field": None, "message": "invalid request"}
        return e.InvalidRequest(f"{first['field']}: {first['message']}", param=first["field"])
    return e.ValidationFailed("request validation failed", details=details)


def install_error_handlers(app: FastAPI) -> None:
    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, e.AppError)
        return error_response(request.url.path, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request.url.path, _validation_error(request, exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        cls = _HTTP_CODES.get(exc.status_code, e.InvalidRequest)
        message = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        response = error_response(request.url.path, cls(message))
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(e.AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def internal_error_body(path: str, request_id: str) -> dict[str, Any]:
    """The body of the one logged 500: no internals, only the request id to quote."""
    message = f"internal server error (request id {request_id})"
    if is_openai_path(path):
        return openai_error(500, "INTERNAL_ERROR", message)
    return {"success": False, "error": {"code": "INTERNAL_ERROR", "message": message}}
