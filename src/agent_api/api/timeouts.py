"""Bounds on slow clients: how long a connection may take to send its request headers, and a
request its body. Idle keep-alive connections are bounded by uvicorn's own
`timeout_keep_alive` (KEEPALIVE_TIMEOUT).

- `header_timeout_protocol(seconds)`: uvicorn's httptools protocol with a timer armed when a
  connection opens and after each response, disarmed once a request's headers are complete.
  A connection that has not sent complete headers by then is closed (no answer: there is no
  request to answer). uvicorn itself has no such limit: a silent or half-sent connection was
  held for ever.
- `BodyTimeoutMiddleware`: a request whose body has not fully arrived within
  REQUEST_BODY_TIMEOUT of the start of the request answers 408 `REQUEST_TIMEOUT` with
  `Connection: close`, so the server closes the socket.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agent_api.domain.errors import RequestTimeout


def header_timeout_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """An `HttpToolsProtocol` (pass it as uvicorn's `http=`) that closes a connection which has
    not sent complete request headers within `seconds` of opening or of its last response."""

    # A class made here, long only by its small methods: uvicorn builds the protocol itself
    # with fixed arguments, so the bound reaches it by closure.
    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._disarm_header_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # uvicorn armed its keep-alive timer: the connection waits for a next request,
            # whose headers get the same bound (a pipelined request already has its own).
            if self.timeout_keep_alive_task is not None:
                self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(seconds, self._on_header_timeout)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _on_header_timeout(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


class BodyTimeoutMiddleware:
    """408 for a body that has not fully arrived `seconds` after the request started.

    The deadline covers the whole body, not each read: a client trickling a byte at a time
    holds its socket no longer than one that sends nothing. Reads after the body (waiting for
    a disconnect during a stream) are not bounded.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done = False
        timed_out = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                # Raised inside the framework's body read (like the body-size limit): the
                # error handlers answer it.
                raise HTTPException(408, RequestTimeout.default_message) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_closing(message: Message) -> None:
            if timed_out and message["type"] == "http.response.start":
                # The rest of the body may still come: the connection cannot be reused.
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, timed_receive, send_closing)
