"""Pure-ASGI middleware (never BaseHTTPMiddleware: it buffers streams and costs throughput).

- `RequestContextMiddleware`: request id (echoed or generated) on every response and bound to
  every log line; one access log line per request; the catch-all that turns an unexpected
  exception into one logged 500 carrying the request id and no internals.
- `BodySizeLimitMiddleware`: 413 for bodies over the limit, declared or streamed.
- `MetricsMiddleware`: request count and latency by route template, method and status.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_api.api.errors import error_response, internal_error_body
from agent_api.domain.errors import PayloadTooLarge
from agent_api.infrastructure.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("agent_api.http")


def add_response_headers(scope: Scope, headers: Iterable[tuple[str, str]]) -> None:
    """Header fields for whatever response this request ends with (success, error or stream):
    `RequestContextMiddleware` adds them when the response starts."""
    scope.setdefault("state", {}).setdefault("response_headers", []).extend(headers)


class _StampedSend:
    """`send` that stamps the request id and the headers dependencies computed on the response
    start, and remembers whether a response started and with what status."""

    def __init__(self, send: Send, request_id: str, state: dict[str, Any]) -> None:
        self._send = send
        self._request_id = request_id
        self._state = state
        self.status = 500
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            # Headers that dependencies computed (e.g. rate-limit fields) reach every kind
            # of response this way, streams included.
            extra = [(k.encode(), v.encode()) for k, v in self._state.get("response_headers", ())]
            message["headers"] = [
                *message.get("headers", []),
                *extra,
                (b"x-request-id", self._request_id.encode()),
            ]
        await self._send(message)


def _log_request(scope: Scope, status: int, started_at: float) -> None:
    """The access log line of one request: who, what, how it ended and how long it took."""
    principal = scope["state"].get("principal")
    log.info(
        "request",
        method=scope["method"],
        path=scope["path"],
        status=status,
        duration_ms=round((time.perf_counter() - started_at) * 1000, 2),
        client=scope["client"][0] if scope.get("client") else None,
        user_id=str(principal.user.id) if principal else None,
        credential=f"{principal.credential.type}:{principal.credential.id}" if principal else None,
    )


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
        # A per-request copy: servers hand the lifespan state to every request, some (e.g.
        # asgi-lifespan) as the very same dict, and one request's principal or extra headers
        # must never show up on the next one.
        state: dict[str, Any] = {**scope.get("state", {}), "request_id": request_id}
        scope["state"] = state
        stamped = _StampedSend(send, request_id, state)
        started_at = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, stamped)
            except Exception:
                log.exception("unhandled error", path=scope["path"])
                if not stamped.started:
                    body = internal_error_body(scope["path"], request_id)
                    await JSONResponse(body, status_code=500)(scope, receive, stamped)
            finally:
                _log_request(scope, stamped.status, started_at)


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


UNMATCHED_ROUTE = "<unmatched>"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Where FastAPI keeps the prefixed view of a route reached through included routers: the route
# object itself only knows its path relative to its own router.
_FASTAPI_SCOPE_KEY = "fastapi"
_EFFECTIVE_ROUTE_KEY = "effective_route_context"


def route_template(scope: Scope) -> str:
    """The matched route's full path template (`/v1/conversations/{id}`), read from the scope
    after routing. Never the raw path, so label values stay bounded: a request no route
    matched gets `UNMATCHED_ROUTE`."""
    fastapi_scope = scope.get(_FASTAPI_SCOPE_KEY)
    effective = fastapi_scope.get(_EFFECTIVE_ROUTE_KEY) if isinstance(fastapi_scope, dict) else None
    for candidate in (effective, scope.get("route")):
        template = getattr(candidate, "path_format", None)
        if isinstance(template, str):
            return template
    if scope.get("endpoint") is not None and not scope.get("path_params"):
        # A plain route without parameters (the docs pages): its path is its template.
        return str(scope["path"])
    return UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts every HTTP request and observes its latency, by route template, method and status.

    The clock runs until the app returns, i.e. to the end of the body: a stream is measured to
    its last chunk (or to the client's disconnect). A request that raises before answering
    counts as 500, which is what the request-context middleware outside answers for it.
    Unknown methods are labelled `OTHER`, so no client input can add label values.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children by (route, method, status): `labels()` costs more than the
        # observation itself. Bounded like the label values.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - start
            self._record(route_template(scope), scope["method"], status, elapsed)

    def _record(self, route: str, method: str, status: int, elapsed: float) -> None:
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.metrics.http_requests.labels(route, method, str(status)),
                self.metrics.http_latency.labels(route, method),
            )
            self._series[key] = series
        requests, latency = series
        requests.inc()
        latency.observe(elapsed)
