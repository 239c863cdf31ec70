"""`OpenAICompatibleChatModel`: the ChatModel port over any OpenAI-compatible endpoint
(LiteLLM, OpenAI, vLLM, Ollama), on httpx with the aiohttp transport.

Contract:
- `POST {base_url}/chat/completions`, the base URL used as given (`http://litellm:4000`,
  `https://api.openai.com/v1`); `Authorization: Bearer <api_key>` only when a key is set.
- Retries (exponential backoff with jitter, `Retry-After`/`retry-after-ms` honoured up to
  `retry_after_cap`, never past the overall deadline) on connection errors and on 408, 429,
  500, 502, 503 and 504, at most `max_retries` times, and only until a 2xx response's headers
  arrived: nothing that has been streamed is ever asked for again.
- Time limits: `connect_timeout` to open a connection; `timeout` for the whole call (retries
  and the whole stream included); `stream_idle_timeout` between two stream chunks.
- Errors: `UpstreamTimeout` for any time limit and for an upstream 408/504 (but a retry cut
  short by the overall limit raises the error that caused the retry); `InvalidRequest`
  (400) when the upstream refuses the request itself with 400/413/422 (e.g. a conversation
  too long for the model); `UpstreamFailed` (502) for everything else. Messages are ours and
  generic: the upstream's body is not repeated (it is logged, truncated, at warning level;
  the API key never is), except the message of a 400 that names the refused `param` (a
  forwarded field the model does not take), passed on with that param.
- Cancellation: closing the stream (`aclose`, or cancelling the consuming task) closes the
  upstream connection at once, which is how the upstream learns to stop generating.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import structlog
from httpx_aiohttp import AiohttpTransport

from agent_api.domain.chat import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
)
from agent_api.domain.errors import AppError, UpstreamFailed, UpstreamTimeout
from agent_api.infrastructure.llm.openai_wire import (
    INVALID_ANSWER,
    ChunkAssembler,
    parse_completion,
    request_body,
)
from agent_api.infrastructure.llm.sse import SSEDecoder
from agent_api.infrastructure.llm.upstream_errors import (
    NETWORK_ERRORS,
    RETRYABLE_STATUSES,
    error_for_status,
    is_timeout,
    retry_after_seconds,
)

MAX_BODY_BYTES = 16 * 1024 * 1024  # a non-streamed answer larger than this is refused
LOGGED_BODY_CHARS = 500


class OpenAICompatibleChatModel:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        connect_timeout: float = 10.0,
        stream_idle_timeout: float = 60.0,
        retry_after_cap: float = 20.0,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Opens nothing: the connection pool is created on the first call. `transport`
        replaces the aiohttp transport (e.g. `httpx.MockTransport` in unit tests); this
        client closes it either way."""
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key or None
        self._timeout = timeout
        self._max_retries = max_retries
        self._idle_timeout = min(stream_idle_timeout, timeout)
        self._retry_after_cap = retry_after_cap
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        # Our own asyncio deadlines bound reads; the transport only bounds connecting.
        self._http_timeout = httpx.Timeout(
            connect=connect_timeout, read=None, write=connect_timeout, pool=None
        )
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        if transport is None:
            transport = AiohttpTransport(
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                )
            )
        self._client = httpx.AsyncClient(transport=transport, headers=headers)
        self._log = structlog.get_logger("agent_api.llm")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One non-streamed answer. Raises UpstreamFailed, UpstreamTimeout, InvalidRequest."""
        deadline = self._deadline()
        response = await self._open(request_body(request, stream=False), deadline, request.model)
        try:
            raw = await self._read_body(response, deadline, limit=MAX_BODY_BYTES)
        finally:
            await response.aclose()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise UpstreamFailed(INVALID_ANSWER) from exc
        return parse_completion(body, requested_model=request.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Events as the upstream sends them, then exactly one StreamEnd. Raises like
        `complete`; a failure after the first event is never retried."""
        deadline = self._deadline()
        response = await self._open(request_body(request, stream=True), deadline, request.model)
        try:
            if response.headers.get("content-type", "").startswith("application/json"):
                # The upstream ignored `stream: true`: replay its whole answer as events.
                raw = await self._read_body(response, deadline, limit=MAX_BODY_BYTES)
                async for event in _replay(_json(raw), request.model):
                    yield event
                return
            assembler = ChunkAssembler(request.model)
            decoder = SSEDecoder()
            chunks = response.aiter_bytes()
            done = False
            while not done:
                chunk = await self._next_chunk(chunks, deadline)
                events = decoder.feed(chunk) if chunk is not None else decoder.close()
                for data in events:
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    for event in assembler.feed(_json(data)):
                        yield event
                if chunk is None:
                    break
            if not done and assembler.finish_reason is None:
                raise UpstreamFailed("the language model upstream ended the answer early")
            if done:
                await self._drain(chunks)
            yield StreamEnd(assembler.result())
        finally:
            await response.aclose()

    # --- connection and retries --------------------------------------------------------------
    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._timeout

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise UpstreamTimeout()
        return remaining

    async def _open(self, body: dict[str, Any], deadline: float, model: str) -> httpx.Response:
        """Sends the request until a 2xx response's headers arrive, retrying what may
        succeed next time. Returns the open response (the caller closes it)."""
        attempt = 0
        error: AppError | None = None
        while True:
            retry_after: float | None = None
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._client.send(
                        self._client.build_request(
                            "POST", self._url, json=body, timeout=self._http_timeout
                        ),
                        stream=True,
                    )
            except TimeoutError as exc:
                # A retry that runs out of time reports why it was retried: an unreachable
                # upstream stays a 502, not a 504 for the last few milliseconds left.
                raise error or UpstreamTimeout() from exc
            except NETWORK_ERRORS as exc:
                error = self._unreachable(exc, attempt)
            else:
                if 200 <= response.status_code < 300:
                    return response
                error, retry_after = await self._refusal(response, deadline, model, attempt)
                if response.status_code not in RETRYABLE_STATUSES:
                    raise error
            if attempt >= self._max_retries:
                raise error
            delay = self._retry_delay(attempt, retry_after)
            if asyncio.get_running_loop().time() + delay >= deadline:
                raise error
            await asyncio.sleep(delay)
            attempt += 1

    def _unreachable(self, exc: Exception, attempt: int) -> AppError:
        """The error a failed connection or transfer stands for (logged, to retry or raise)."""
        self._log.warning("llm upstream unreachable", error=type(exc).__name__, attempt=attempt)
        if is_timeout(exc):
            return UpstreamTimeout()
        return UpstreamFailed("could not reach the language model upstream")

    async def _refusal(
        self, response: httpx.Response, deadline: float, model: str, attempt: int
    ) -> tuple[AppError, float | None]:
        """Reads, logs and closes an error response; returns our error and its Retry-After."""
        status = response.status_code
        try:
            raw = await self._read_body(response, min(deadline, _soon(5.0)), limit=4096)
        except AppError:
            raw = b""
        finally:
            await response.aclose()
        text = raw.decode("utf-8", errors="replace")
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        self._log.warning(
            "llm upstream error",
            status=status,
            body=text[:LOGGED_BODY_CHARS],
            model=model,
            attempt=attempt,
        )
        return error_for_status(status, text, model), retry_after_seconds(response.headers)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._retry_after_cap)
        backoff = min(self._backoff_max, self._backoff_base * 2.0**attempt)
        # Jitter spreads the retries of many concurrent callers; not security related.
        return backoff * random.uniform(0.5, 1.0)  # noqa: S311

    # --- reading -----------------------------------------------------------------------------
    async def _read_body(self, response: httpx.Response, deadline: float, *, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        chunks = response.aiter_bytes()
        while (chunk := await self._next_chunk(chunks, deadline, idle=False)) is not None:
            size += len(chunk)
            if size > limit:
                if limit == MAX_BODY_BYTES:
                    raise UpstreamFailed("the language model upstream answer is too large")
                break
            parts.append(chunk)
        return b"".join(parts)

    async def _next_chunk(
        self, chunks: AsyncIterator[bytes], deadline: float, *, idle: bool = True
    ) -> bytes | None:
        """The next piece of the body, or None at its end. Raises UpstreamTimeout when the
        idle or overall limit passes first, UpstreamFailed when the connection breaks."""
        remaining = self._remaining(deadline)
        try:
            async with asyncio.timeout(min(remaining, self._idle_timeout) if idle else remaining):
                return await anext(chunks)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            raise UpstreamTimeout() from exc
        except NETWORK_ERRORS as exc:
            if is_timeout(exc):
                raise UpstreamTimeout() from exc
            self._log.warning("llm upstream connection lost", error=type(exc).__name__)
            raise UpstreamFailed("the language model upstream connection was lost") from exc

    async def _drain(self, chunks: AsyncIterator[bytes]) -> None:
        """Reads to the end of a finished stream so its connection can be reused; gives up
        (the connection is then closed instead) when the upstream keeps it open."""
        try:
            async with asyncio.timeout(1.0):
                async for _ in chunks:
                    pass
        except (TimeoutError, *NETWORK_ERRORS):
            pass


def _json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise UpstreamFailed(INVALID_ANSWER) from exc


async def _replay(body: Any, model: str) -> AsyncIterator[ChatEvent]:
    result = parse_completion(body, requested_model=model)
    if result.message.content:
        yield TextDelta(result.message.content)
    for index, call in enumerate(result.message.tool_calls):
        yield ToolCallDelta(index, call.id, call.name, call.arguments)
    yield StreamEnd(result)


def _soon(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds
