"""Pure-ASGI middleware (never BaseHTTPMiddleware: it buffers streams and costs throughput).

- `RequestContextMiddleware`: request id (echoed or generated) on every response and bound to
  every log line; one access log line per request; the catch-all that turns an unexpected
  exception into one logged 500 carrying the request id and no internals.
- `BodySizeLimitMiddleware`: 413 for bodies over the limit, declared or streamed.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_api.api.errors import error_response, internal_error_body
from agent_api.domain.errors import PayloadTooLarge

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("agent_api.http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                # Headers that dependencies computed (e.g. rate-limit fields) reach every kind
                # of response this way, streams included.
                extra = [(k.encode(), v.encode()) for k, v in state.get("response_headers", ())]
                message["headers"] = [
                    *message["headers"],
                    *extra,
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        start = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled error", path=scope["path"])
                if not response_started:
                    body = internal_error_body(scope["path"], request_id)
                    await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
            finally:
                principal = state.get("principal")
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - start) * 1000, 2),
                    client=scope["client"][0] if scope.get("client") else None,
                    user_id=str(principal.user.id) if principal else None,
                    credential=f"{principal.credential.type}:{principal.credential.id}"
                    if principal
                    else None,
                )


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(scope["path"], self._error())
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the framework's body read; the error handlers answer 413.
                    raise HTTPException(413, self._error().message)
            return message

        await self.app(scope, limited_receive, send)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
