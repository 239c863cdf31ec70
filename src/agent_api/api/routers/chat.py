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
from agent_api.application.runs import Run
from agent_api.domain.chat import ToolCall
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


async def _chunks(
    run: Run,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    draining: asyncio.Event,
) -> AsyncGenerator[bytes, None]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }

    def chunk(
        delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None, **extra: Any
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": logprobs}
        return sse_data({**base, "choices": [choice], "usage": None, **extra})

    yield chunk({"role": "assistant", "content": ""})
    finished: RunFinished | None = None
    try:
        async with contextlib.aclosing(with_keepalive(run.events(), stop=draining)) as events:
            async for event in events:
                if event is None:
                    yield PING
                elif isinstance(event, ContentDelta):
                    yield chunk({"content": event.text})
                elif isinstance(event, RunFinished):
                    finished = event
    except AppError as exc:
        yield sse_data(openai_error_for(exc))
        yield DONE
        return
    except Exception:
        log.exception("run failed mid-stream")
        yield sse_data(openai_error(500, "INTERNAL_ERROR", "internal error"))
        yield DONE
        return
    assert finished is not None
    for index, call in enumerate(finished.answer().tool_calls):
        yield chunk({"tool_calls": [{"index": index, **call.to_openai()}]})
    # The final answer's logprobs, whole, on the last choice chunk: clients concatenate the
    # chunks' `logprobs.content` lists, so the total is the same as the non-streamed one.
    yield chunk(
        {},
        finished.finish_reason,
        finished.logprobs,
        conversation_id=str(finished.conversation.id),
        **_pending_extension(finished),
    )
    if include_usage:
        usage = usage_dict(finished.usage.prompt_tokens, finished.usage.completion_tokens)
        yield sse_data({**base, "choices": [], "usage": usage})
    yield DONE


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


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI-compatible), answered by the agent",
    description="Runs the agent with the server-side tools the credential may use. Without "
    "`conversation_id` (body extension or `X-Conversation-Id` header) the `messages` start a "
    "new stored conversation; with it, only the trailing user message is taken. A tool call "
    'that needs approval ends the answer with `finish_reason: "tool_calls"` and the extension '
    "`pending_approval`; approve with `POST /v1/conversations/{id}/approve`.",
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
    stream, options = bool(body.stream), body.turn_options()
    if conversation_id is None:
        run = await service.start(
            principal, messages, model=body.model, stream=stream, options=options
        )
    else:
        last = messages[-1]
        if last.role != "user" or not last.content:
            raise InvalidRequest(
                "the last message must be a non-empty user message", param="messages"
            )
        run = await service.send(
            principal,
            conversation_id,
            last.content,
            model=body.model,
            stream=stream,
            options=options,
        )
    add_response_headers(request.scope, [("X-Conversation-Id", str(run.conversation.id))])
    completion_id = f"chatcmpl-{run.run_id.hex}"
    created = int(time.time())
    if stream:
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
