"""The native agent API: conversations, their turns, and approvals (JSON or SSE)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from agent_api.api.deps import ConversationReaderDep, ConversationsDep, CurrentPrincipal
from agent_api.api.middleware import add_response_headers
from agent_api.api.routers.conversation_schemas import (
    ApproveRequest,
    ConversationDetailOut,
    ConversationOut,
    ConversationPageOut,
    CreateConversationRequest,
    MessageOut,
    PendingApprovalOut,
    SendMessageRequest,
    TurnOut,
    UsageOut,
)
from agent_api.api.schemas import Envelope, error_responses
from agent_api.api.streaming import DONE, PING, event_stream, sse_data, with_keepalive
from agent_api.application.agent.events import (
    AgentEvent,
    ApprovalRequired,
    ContentDelta,
    RunFinished,
    ToolCallRequested,
    ToolFinished,
)
from agent_api.application.runs import Run
from agent_api.domain.chat import ChatMessage
from agent_api.domain.conversations import ApprovalRequest, ConversationStatus
from agent_api.domain.errors import AppError

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
log = structlog.get_logger("agent_api.conversations")

STREAM_NOTE = (
    " With `stream: true` the answer is `text/event-stream`: events `content`, `tool_call`, "
    "`tool_result`, `approval_required`, `done`, `error`, then `data: [DONE]`."
)


def _native_event(event: AgentEvent) -> dict[str, Any] | None:
    """The native SSE payload of an agent event (None for internal events)."""
    if isinstance(event, ContentDelta):
        return {"type": "content", "delta": event.text}
    if isinstance(event, ToolCallRequested):
        return {"type": "tool_call", "tool_call": event.tool_call.to_openai()}
    if isinstance(event, ToolFinished):
        o = event.outcome
        payload: dict[str, Any] = {
            "type": "tool_result",
            "tool_call_id": o.tool_call_id,
            "name": o.name,
        }
        if o.ok:
            payload["result"] = o.result
        else:
            payload["error"] = {"code": o.error_code, "message": o.error_message}
        return payload
    if isinstance(event, ApprovalRequired):
        pending = PendingApprovalOut.of(event.pending)
        return {
            "type": "approval_required",
            "pending_approval": pending.model_dump(mode="json") if pending else None,
        }
    if isinstance(event, RunFinished):
        return {
            "type": "done",
            "conversation": ConversationOut.model_validate(event.conversation).model_dump(
                mode="json"
            ),
            "usage": UsageOut.model_validate(event.usage).model_dump(),
        }
    return None


async def _native_sse(run: Run, draining: asyncio.Event) -> AsyncGenerator[bytes, None]:
    event_id = 0
    try:
        async with contextlib.aclosing(with_keepalive(run.events(), stop=draining)) as events:
            async for event in events:
                if event is None:
                    yield PING
                    continue
                payload = _native_event(event)
                if payload is not None:
                    event_id += 1
                    yield sse_data(payload, event_id)
    except AppError as exc:
        yield sse_data({"type": "error", "code": exc.code, "message": exc.message}, event_id + 1)
    except Exception:
        log.exception("run failed mid-stream")
        yield sse_data(
            {"type": "error", "code": "INTERNAL_ERROR", "message": "internal error"}, event_id + 1
        )
    yield DONE


async def _answer(request: Request, run: Run, stream: bool, status_code: int) -> Response:
    add_response_headers(request.scope, [("X-Conversation-Id", str(run.conversation.id))])
    if stream:
        return event_stream(_native_sse(run, request.app.state.draining), status_code=status_code)
    finished = await run.result()
    body = Envelope(data=TurnOut.of(finished)).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code)


_TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 504),
    200: {"model": Envelope[TurnOut], "content": {"text/event-stream": {}}},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start a conversation",
    description="Creates a conversation and runs the agent on the first message." + STREAM_NOTE,
    response_model=Envelope[TurnOut],
    responses={
        **{s: r for s, r in _TURN_RESPONSES.items() if s != 200},
        201: _TURN_RESPONSES[200],
    },
)
async def create_conversation(
    request: Request,
    body: CreateConversationRequest,
    principal: CurrentPrincipal,
    conversations: ConversationsDep,
) -> Response:
    run = await conversations.start(
        principal,
        [ChatMessage(role="user", content=body.message)],
        agent_type=body.agent_type,
        model=body.model,
        title=body.title,
        stream=body.stream,
    )
    return await _answer(request, run, body.stream, status.HTTP_201_CREATED)


@router.get(
    "",
    summary="List conversations, most recently active first",
    responses=error_responses(400, 401, 422, 429),
)
async def list_conversations(
    principal: CurrentPrincipal,
    conversations: ConversationReaderDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[A-Za-z0-9_-]+=*$",
            description="The `next_cursor` of the previous page.",
        ),
    ] = None,
    status_filter: Annotated[ConversationStatus | None, Query(alias="status")] = None,
) -> Envelope[ConversationPageOut]:
    page, next_cursor = await conversations.page(
        principal, limit=limit, cursor=cursor, status=status_filter
    )
    return Envelope(
        data=ConversationPageOut(
            conversations=[ConversationOut.model_validate(c) for c in page], next_cursor=next_cursor
        )
    )


@router.get(
    "/{conversation_id}",
    summary="A conversation with its whole history and any pending approval",
    responses=error_responses(401, 404, 422, 429),
)
async def get_conversation(
    conversation_id: UUID, principal: CurrentPrincipal, conversations: ConversationReaderDep
) -> Envelope[ConversationDetailOut]:
    view = await conversations.get(principal, conversation_id)
    return Envelope(
        data=ConversationDetailOut(
            conversation=ConversationOut.model_validate(view.conversation),
            messages=[MessageOut.model_validate(m) for m in view.messages],
            pending_approval=PendingApprovalOut.of(view.pending),
        )
    )


@router.post(
    "/{conversation_id}/messages",
    summary="Send the next message",
    description="409 `CONVERSATION_BUSY` while a run is in progress or an approval is pending."
    + STREAM_NOTE,
    response_model=Envelope[TurnOut],
    responses=_TURN_RESPONSES,
)
async def send_message(
    request: Request,
    conversation_id: UUID,
    body: SendMessageRequest,
    principal: CurrentPrincipal,
    conversations: ConversationsDep,
) -> Response:
    run = await conversations.send(principal, conversation_id, body.message, stream=body.stream)
    return await _answer(request, run, body.stream, status.HTTP_200_OK)


@router.post(
    "/{conversation_id}/approve",
    summary="Approve, edit or reject the pending tool calls, and resume",
    description="Without `tool_call_ids` the verdict applies to every pending call; with them, "
    "the listed calls get the verdict and the others the opposite. `arguments` replaces the "
    "arguments of approved calls. Rejected calls reach the model as "
    '`"rejected by the user: <reason>"`. 409 `NOT_PENDING_APPROVAL` when nothing waits (of '
    "concurrent approvals exactly one wins). Deciding needs a session or an API key created "
    "with `can_approve` (else 403 `APPROVAL_FORBIDDEN`) that may use every pending call's tool "
    "(else 403 `TOOL_FORBIDDEN`); on a 403 the calls stay pending." + STREAM_NOTE,
    response_model=Envelope[TurnOut],
    responses=_TURN_RESPONSES,
)
async def approve(
    request: Request,
    conversation_id: UUID,
    body: ApproveRequest,
    principal: CurrentPrincipal,
    conversations: ConversationsDep,
) -> Response:
    decision = ApprovalRequest(
        approved=body.approved,
        reason=body.reason,
        tool_call_ids=tuple(body.tool_call_ids) if body.tool_call_ids else None,
        arguments=body.arguments or {},
    )
    run = await conversations.approve(principal, conversation_id, decision, stream=body.stream)
    return await _answer(request, run, body.stream, status.HTTP_200_OK)


@router.delete(
    "/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a conversation",
    responses=error_responses(401, 404, 422, 429),
)
async def delete_conversation(
    conversation_id: UUID, principal: CurrentPrincipal, conversations: ConversationReaderDep
) -> Response:
    await conversations.delete(principal, conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
