"""Server-sent events: framing, `: ping` keepalives while nothing else is sent, and a plain
StreamingResponse so every byte is exactly what the surface promises.

`with_keepalive` lets a ping out while a step (an LLM call, a tool) is still under way;
closing the stream cancels the run and waits for its cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from agent_api.domain.errors import ServiceUnavailable

T = TypeVar("T")

PING = b": ping\n\n"
DONE = b"data: [DONE]\n\n"
KEEPALIVE_SECONDS = 15.0

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_data(payload: Any, event_id: int | None = None) -> bytes:
    """One SSE event whose data is `payload` as compact JSON."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    prefix = f"id: {event_id}\n" if event_id is not None else ""
    return f"{prefix}data: {body}\n\n".encode()


class ShuttingDown(ServiceUnavailable):
    """The server is draining: open streams end with this as their final event."""

    code = "SERVER_SHUTTING_DOWN"
    default_message = "the server is shutting down; continue the conversation on retry"


async def _produce(
    source: AsyncGenerator[Any, None], queue: asyncio.Queue[tuple[bool, Any]]
) -> None:
    """Iterates the whole of `source` in this task, handing over `(False, item)` for each item,
    then `(True, None)` at its end or `(True, error)` when it raises."""
    try:
        async with contextlib.aclosing(source) as items:
            async for item in items:
                await queue.put((False, item))
    except Exception as exc:
        await queue.put((True, exc))
        return
    await queue.put((True, None))


async def _cancel_and_wait(
    producer: asyncio.Task[None], *waiters: asyncio.Future[Any] | None
) -> None:
    for waiter in waiters:
        if waiter is not None:
            waiter.cancel()
    producer.cancel()
    # Shielded: the request may itself be cancelled (client gone), and the run's cleanup
    # (keeping the partial answer, handing the conversation back) must still finish.
    with anyio.CancelScope(shield=True):
        await asyncio.gather(producer, return_exceptions=True)


async def with_keepalive(
    source: AsyncGenerator[T, None],
    interval: float = KEEPALIVE_SECONDS,
    stop: asyncio.Event | None = None,
) -> AsyncGenerator[T | None, None]:
    """Yields the items of `source`, and None whenever `interval` seconds pass without one.
    Raises ShuttingDown once `stop` is set (the source is then cancelled like on close).

    One producer task owns the whole iteration of `source` (an agent run's structured
    concurrency must stay in the task that started it) and hands items over one at a time.
    Closing this generator cancels the producer, which closes `source`, and waits for it.
    """
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=1)
    producer = asyncio.create_task(_produce(source, queue))
    stopping = asyncio.ensure_future((stop or asyncio.Event()).wait())
    getter: asyncio.Task[tuple[bool, Any]] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, stopping}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            if stopping in done:
                raise ShuttingDown()
            if not done:
                yield None
                continue
            finished, value = getter.result()
            getter = None
            if finished:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        await _cancel_and_wait(producer, stopping, getter)


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse that closes its body generator however the response ends.

    Starlette abandons the body iterator when the client disconnects; for an agent run that
    would leave the graph's tasks (and the upstream LLM call) running. Closing it runs the
    generator's cleanup, which cancels the run."""

    def __init__(
        self, body: AsyncGenerator[bytes, None], headers: dict[str, str], status_code: int
    ) -> None:
        super().__init__(
            body, status_code=status_code, media_type="text/event-stream", headers=headers
        )
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()


def event_stream(
    body: AsyncGenerator[bytes, None], headers: dict[str, str] | None = None, status_code: int = 200
) -> EventStreamResponse:
    return EventStreamResponse(body, {**SSE_HEADERS, **(headers or {})}, status_code)
