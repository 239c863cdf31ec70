"""The OpenAI-compatible surface: `/v1/chat/completions` (agent-backed) and `/v1/models`.

Bodies, streams and errors follow OpenAI's wire format byte for byte; what the agent adds
travels in extension fields (`conversation_id`, `pending_approval`) and the
`X-Conversation-Id` header, which OpenAI SDKs ignore.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from itertools import takewhile
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from agent_api.api.deps import ConversationsDep, CurrentPrincipal, ModelsDep
from agent_api.api.errors import openai_error, openai_error_for
from agent_api.api.middleware import add_response_headers
from agent_api.api.routers.openai_schemas import (
    ChatCompletionRequest,
    ModelList,
    ModelOut,
    usage_dict,
)
from agent_api.api.schemas import error_responses
from agent_api.api.streaming import DONE, PING, event_stream, sse_data, with_keepalive
from agent_api.application.agent.events import ContentDelta, RunFinished
from agent_api.application.conversations import ConversationService
from agent_api.application.runs import Run
from agent_api.domain.chat import ChatMessage, ToolCall, TurnOptions, Usage
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import AppError, InvalidRequest, ModelNotFound

router = APIRouter(prefix="/v1", tags=["openai"])
log = structlog.get_logger("agent_api.chat")
OWNED_BY = "agent-api"
_STARTED = int(time.time())


def _pending_extension(finished: RunFinished) -> dict[str, Any]:
    if not finished.pending:
        return {}
    conversation_id = str(finished.conversation.id)
    calls = [
        ToolCall(id=p.tool_call_id, name=p.name, arguments=json.dumps(p.arguments)).to_openai()
        for p in finished.pending
    ]
    return {
        "pending_approval": {
            "conversation_id": conversation_id,
            "tool_calls": calls,
            "approve_url": f"/v1/conversations/{conversation_id}/approve",
        }
    }


def _completion(
    finished: RunFinished, completion_id: str, created: int, model: str
) -> dict[str, Any]:
    answer = finished.answer()
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = [call.to_openai() for call in answer.tool_calls]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finished.finish_reason,
                "logprobs": finished.logprobs,
            }
        ],
        "usage": usage_dict(finished.usage.prompt_tokens, finished.usage.completion_tokens),
        "conversation_id": str(finished.conversation.id),
        **_pending_extension(finished),
    }


@dataclass(frozen=True, slots=True)
class _ChunkWriter:
    """Serialises `chat.completion.chunk` events of one completion."""

    completion_id: str
    created: int
    model: str

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def __call__(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: Any = None,
        **extra: Any,
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": logprobs}
        return sse_data({**self._base(), "choices": [choice], "usage": None, **extra})

    def usage(self, usage: Usage) -> bytes:
        counts = usage_dict(usage.prompt_tokens, usage.completion_tokens)
        return sse_data({**self._base(), "choices": [], "usage": counts})


async def _chunks(
    run: Run,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    draining: asyncio.Event,
) -> AsyncGenerator[bytes, None]:
    """The run as `chat.completion.chunk` events: text as it comes, then the answer's tool
    calls (spec-exact deltas), the finish chunk, the usage chunk if asked for, `[DONE]`."""
    chunk = _ChunkWriter(completion_id, created, model)
    yield chunk({"role": "assistant", "content": ""})
    outcome: list[RunFinished] = []
    async for data in _streamed_events(run, chunk, draining, outcome):
        yield data
    if not outcome:
        return  # the error and [DONE] went out
    for data in _closing_chunks(outcome[0], chunk):
        yield data
    if include_usage:
        yield chunk.usage(outcome[0].usage)
    yield DONE


async def _streamed_events(
    run: Run, chunk: _ChunkWriter, draining: asyncio.Event, outcome: list[RunFinished]
) -> AsyncGenerator[bytes, None]:
    """The run's text deltas and keep-alives; its `RunFinished` goes into `outcome`. A failure
    is answered with an error event and `[DONE]` (`outcome` stays empty)."""
    try:
        async with contextlib.aclosing(with_keepalive(run.events(), stop=draining)) as events:
            async for event in events:
                if event is None:
                    yield PING
                elif isinstance(event, ContentDelta):
                    yield chunk({"content": event.text})
                elif isinstance(event, RunFinished):
                    outcome.append(event)
    except AppError as exc:
        yield sse_data(openai_error_for(exc))
        yield DONE
    except Exception:
        log.exception("run failed mid-stream")
        yield sse_data(openai_error(500, "INTERNAL_ERROR", "internal error"))
        yield DONE


def _closing_chunks(finished: RunFinished, chunk: _ChunkWriter) -> list[bytes]:
    """What follows the streamed text: an approval note (for clients with tools of their own),
    one delta per tool call the client must act on, and the finish chunk."""
    out = []
    note = finished.approval_note()
    if note is not None:
        out.append(chunk({"content": f"\n\n{note}" if finished.final_text else note}))
    for index, call in enumerate(finished.answer().tool_calls):
        out.append(chunk({"tool_calls": [{"index": index, **call.to_openai()}]}))
    # The final answer's logprobs, whole, on the last choice chunk: clients concatenate the
    # chunks' `logprobs.content` lists, so the total is the same as the non-streamed one.
    out.append(
        chunk(
            {},
            finished.finish_reason,
            finished.logprobs,
            conversation_id=str(finished.conversation.id),
            **_pending_extension(finished),
        )
    )
    return out


def _conversation_id(body: ChatCompletionRequest, header: str | None) -> UUID | None:
    if body.conversation_id is not None:
        return body.conversation_id
    if not header:
        return None
    try:
        return UUID(header)
    except ValueError:
        raise InvalidRequest(
            "X-Conversation-Id is not a valid id", param="conversation_id"
        ) from None


async def _continue(
    service: ConversationService,
    principal: Principal,
    conversation_id: UUID,
    messages: list[ChatMessage],
    body: ChatCompletionRequest,
    options: TurnOptions,
) -> Run:
    """A stored conversation's next run: trailing tool messages are the results of the
    client's tool calls it waits for; otherwise the trailing user message is the next turn."""
    results = list(takewhile(lambda m: m.role == "tool", reversed(messages)))[::-1]
    if results:
        return await service.submit_tool_results(
            principal,
            conversation_id,
            results,
            model=body.model,
            stream=body.stream,
            options=options,
        )
    last = messages[-1]
    if last.role != "user" or not last.has_content:
        raise InvalidRequest(
            "the last message must be a non-empty user message or tool results",
            param="messages",
        )
    return await service.send(
        principal,
        conversation_id,
        last.content or "",
        model=body.model,
        stream=body.stream,
        options=options,
        parts=last.parts,
    )


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI-compatible), answered by the agent",
    description="Runs the agent with the server-side tools the credential may use. Without "
    "`conversation_id` (body extension or `X-Conversation-Id` header) the `messages` continue "
    "the caller's stored conversation they extend (only the new messages are stored: user "
    "turns, or `tool` messages answering the client's tool calls it waits for) or start a new "
    "one; a retry of a request still being answered is refused with 409 and "
    "`x-should-retry: false`. With it, only the trailing user message is taken, or the "
    "trailing `tool` messages answering the client's tool calls it waits for. Client `tools` "
    "are offered beside the server's; a call of one ends the answer with `finish_reason: "
    '"tool_calls"` and the conversation waits (`awaiting_tools`) for the results. A server '
    'tool call that needs approval ends the answer with `finish_reason: "tool_calls"` (text '
    'and `"stop"` when the request has client tools) and the extension `pending_approval`; '
    "approve with `POST /v1/conversations/{id}/approve`.",
    responses={
        # `stream: true` answers an event stream of `chat.completion.chunk` objects instead.
        200: {"content": {"application/json": {}, "text/event-stream": {}}},
        **error_responses(400, 401, 403, 404, 409, 413, 429, 502, 504, openai=True),
    },
)
async def chat_completions(
    request: Request,
    body: ChatCompletionRequest,
    principal: CurrentPrincipal,
    service: ConversationsDep,
    x_conversation_id: Annotated[str | None, Header()] = None,
) -> Response:
    conversation_id = _conversation_id(body, x_conversation_id)
    messages = body.chat_messages()
    options = body.turn_options()
    if conversation_id is None:
        run = await service.continue_or_start(
            principal, messages, model=body.model, stream=body.stream, options=options
        )
    else:
        run = await _continue(service, principal, conversation_id, messages, body, options)
    add_response_headers(request.scope, [("X-Conversation-Id", str(run.conversation.id))])
    completion_id = f"chatcmpl-{run.run_id.hex}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return event_stream(
            _chunks(
                run, completion_id, created, body.model, include_usage, request.app.state.draining
            )
        )
    finished = await run.result()
    return JSONResponse(_completion(finished, completion_id, created, body.model))


@router.get(
    "/models",
    summary="The models this credential may use (OpenAI-compatible)",
    response_model=ModelList,
    responses=error_responses(401, 429, openai=True),
)
async def list_models(principal: CurrentPrincipal, models: ModelsDep) -> ModelList:
    visible = models.visible(principal)
    return ModelList(data=[ModelOut(id=m, created=_STARTED, owned_by=OWNED_BY) for m in visible])


@router.get(
    "/models/{model_id:path}",
    summary="One model (OpenAI-compatible)",
    response_model=ModelOut,
    responses=error_responses(401, 404, 429, openai=True),
)
async def get_model(model_id: str, principal: CurrentPrincipal, models: ModelsDep) -> ModelOut:
    if model_id not in models.visible(principal):
        raise ModelNotFound(f"the model '{model_id}' does not exist")
    return ModelOut(id=model_id, created=_STARTED, owned_by=OWNED_BY)
