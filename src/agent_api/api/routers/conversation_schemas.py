"""Wire schemas of the native conversation API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from agent_api.api.schemas import IDENTIFIER_MAX_LENGTH, RequestModel, ResponseModel
from agent_api.application.agent.events import RunFinished
from agent_api.domain.chat import ToolCall
from agent_api.domain.conversations import (
    MESSAGE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AgentType,
    ConversationStatus,
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


class ConversationOut(ResponseModel):
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


class FunctionOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionOut


class MessageOut(ResponseModel):
    id: UUID
    seq: int
    role: str
    content: str | None
    content_parts: list[dict[str, Any]] | None = Field(
        None,
        validation_alias="parts",
        description="The content parts (text, image_url, input_audio, file) in OpenAI's shape "
        "when the message was sent with more than text; `content` then holds its text parts "
        "joined. `null` for a text-only message",
    )
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

    @field_validator("content_parts", mode="before")
    @classmethod
    def _parts(cls, parts: Any) -> Any:
        """The stored parts as plain objects; a message without parts has `null`."""
        if isinstance(parts, tuple | list):
            return [dict(part) for part in parts] or None
        return parts

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _openai_calls(cls, calls: Any) -> Any:
        """The domain's `ToolCall`s in their OpenAI shape; a message without calls has `null`."""
        if not isinstance(calls, tuple | list):
            return calls
        return [c.to_openai() if isinstance(c, ToolCall) else c for c in calls] or None


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
        """The calls waiting for a decision, requested when the first was; None when none
        waits."""
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


class UsageOut(ResponseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TurnOut(BaseModel):
    """The result of a run: the conversation, the messages this turn added, its status."""

    conversation: ConversationOut
    messages: list[MessageOut]
    status: ConversationStatus
    pending_approval: PendingApprovalOut | None
    usage: UsageOut

    @classmethod
    def of(cls, finished: RunFinished) -> TurnOut:
        """The status is the conversation's; the pending calls are grouped into one
        approval (see `PendingApprovalOut.of`)."""
        return cls(
            conversation=ConversationOut.model_validate(finished.conversation),
            messages=[MessageOut.model_validate(m) for m in finished.messages],
            status=finished.conversation.status,
            pending_approval=PendingApprovalOut.of(finished.pending),
            usage=UsageOut.model_validate(finished.usage),
        )


class ConversationDetailOut(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    pending_approval: PendingApprovalOut | None


class ConversationPageOut(BaseModel):
    conversations: list[ConversationOut]
    next_cursor: str | None
