"""Wire schemas of the native conversation API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from agent_api.api.schemas import IDENTIFIER_MAX_LENGTH, RequestModel
from agent_api.application.agent.events import RunFinished
from agent_api.domain.chat import Usage
from agent_api.domain.conversations import (
    MESSAGE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AgentType,
    Conversation,
    ConversationStatus,
    Message,
    PendingToolCall,
)

MessageText = Annotated[str, Field(min_length=1, max_length=MESSAGE_MAX_LENGTH)]
# A longer id than its column holds names no stored call.
ToolCallId = Annotated[str, Field(min_length=1, max_length=IDENTIFIER_MAX_LENGTH)]
MAX_DECISIONS = 64


class CreateConversationRequest(RequestModel):
    message: MessageText
    agent_type: AgentType = AgentType.AUTO
    model: Annotated[str, Field(min_length=1, max_length=IDENTIFIER_MAX_LENGTH)] | None = None
    title: Annotated[str, Field(max_length=TITLE_MAX_LENGTH)] | None = None
    stream: bool = False

    model_config = {
        "json_schema_extra": {"examples": [{"message": "What is 1337 * 42?", "stream": False}]}
    }


class SendMessageRequest(RequestModel):
    message: MessageText
    stream: bool = False

    model_config = {"json_schema_extra": {"examples": [{"message": "And divided by 7?"}]}}


class ApproveRequest(RequestModel):
    approved: bool
    reason: Annotated[str, Field(max_length=2000)] | None = None
    tool_call_ids: (
        Annotated[list[ToolCallId], Field(min_length=1, max_length=MAX_DECISIONS)] | None
    ) = None
    arguments: (
        Annotated[dict[ToolCallId, dict[str, Any]], Field(max_length=MAX_DECISIONS)] | None
    ) = None
    stream: bool = False

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"approved": True},
                {"approved": False, "reason": "not on production"},
                {"approved": True, "arguments": {"call_abc": {"expression": "2 + 2"}}},
            ]
        }
    }


class ConversationOut(BaseModel):
    id: UUID
    title: str
    status: ConversationStatus
    agent_type: AgentType
    model: str
    message_count: int
    tool_call_count: int
    total_tokens: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None

    @classmethod
    def of(cls, c: Conversation) -> ConversationOut:
        return cls(
            id=c.id,
            title=c.title,
            status=c.status,
            agent_type=c.agent_type,
            model=c.model,
            message_count=c.message_count,
            tool_call_count=c.tool_call_count,
            total_tokens=c.total_tokens,
            created_at=c.created_at,
            updated_at=c.updated_at,
            last_message_at=c.last_message_at,
        )


class FunctionOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionOut


class MessageOut(BaseModel):
    id: UUID
    seq: int
    role: str
    content: str | None
    tool_calls: list[ToolCallOut] | None
    tool_call_id: str | None
    name: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    is_complete: bool
    context_dropped: int = Field(
        0,
        description="Earlier messages left out of the context this answer was written in, to "
        "fit the model's context window (oldest turns first); 0 when it saw them all",
    )
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        calls = [
            ToolCallOut(id=c.id, function=FunctionOut(name=c.name, arguments=c.arguments))
            for c in m.tool_calls
        ]
        return cls(
            id=m.id,
            seq=m.seq,
            role=m.role,
            content=m.content,
            tool_calls=calls or None,
            tool_call_id=m.tool_call_id,
            name=m.name,
            model=m.model,
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            is_complete=m.is_complete,
            context_dropped=m.context_dropped,
            created_at=m.created_at,
        )


class PendingCallOut(BaseModel):
    id: str = Field(description="The tool call id to name in `tool_call_ids` / `arguments`")
    name: str
    arguments: dict[str, Any]
    reason: str


class PendingApprovalOut(BaseModel):
    tool_calls: list[PendingCallOut]
    requested_at: datetime

    @classmethod
    def of(
        cls, pending: list[PendingToolCall] | tuple[PendingToolCall, ...]
    ) -> PendingApprovalOut | None:
        if not pending:
            return None
        return cls(
            tool_calls=[
                PendingCallOut(
                    id=p.tool_call_id, name=p.name, arguments=p.arguments, reason=p.reason
                )
                for p in pending
            ],
            requested_at=min(p.requested_at for p in pending),
        )


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )


class TurnOut(BaseModel):
    """The result of a run: the conversation, the messages this turn added, its status."""

    conversation: ConversationOut
    messages: list[MessageOut]
    status: ConversationStatus
    pending_approval: PendingApprovalOut | None
    usage: UsageOut

    @classmethod
    def of(cls, finished: RunFinished) -> TurnOut:
        return cls(
            conversation=ConversationOut.of(finished.conversation),
            messages=[MessageOut.of(m) for m in finished.messages],
            status=finished.conversation.status,
            pending_approval=PendingApprovalOut.of(finished.pending),
            usage=UsageOut.of(finished.usage),
        )


class ConversationDetailOut(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    pending_approval: PendingApprovalOut | None


class ConversationPageOut(BaseModel):
    conversations: list[ConversationOut]
    next_cursor: str | None
