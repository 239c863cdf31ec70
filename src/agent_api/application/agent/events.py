"""What a run reports while it goes: the stream both API surfaces render from.

Events are emitted by the graph's nodes as they happen (text deltas as the model produces
them), then `RunFinished` once the conversation's state has been written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent_api.domain.chat import ChatMessage, ToolCall, Usage
from agent_api.domain.conversations import Conversation, Message, PendingToolCall
from agent_api.tools.outcome import ToolOutcome


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequested:
    """The model asked for a tool; the server runs it (or asks for approval)."""

    tool_call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolFinished:
    outcome: ToolOutcome


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    pending: tuple[PendingToolCall, ...]


@dataclass(frozen=True, slots=True)
class ClientToolsRequired:
    """The model called tools of the client's own: the run parks (`awaiting_tools`) and the
    client is handed these calls to run and answer."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class MessageStored:
    message: Message


@dataclass(frozen=True, slots=True)
class LLMCallFinished:
    """One model call done. `finish_reason` is "length" also when the call spent the turn's
    length budget on tool calls, which are then dropped and end the run."""

    model: str
    usage: Usage
    finish_reason: str
    logprobs: Any | None = None


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The last event of a run; `conversation.status` is the conversation's new status.

    `client_calls` are the calls of the client's own tools the run parked on; `client_tools`
    says whether the turn offered client tools at all (the client then runs a tool loop of its
    own, and an approval pause must not look like calls it should run)."""

    conversation: Conversation
    usage: Usage
    messages: tuple[Message, ...]
    pending: tuple[PendingToolCall, ...] = ()
    final_text: str = ""
    finish_reason: str = "stop"
    client_calls: tuple[ToolCall, ...] = ()
    client_tools: bool = False
    logprobs: Any | None = None  # of the run's last model call, as the upstream sent them

    def answer(self) -> ChatMessage:
        """The assistant message the client is shown for this run: the final text, and the
        calls the client must act on: its own tools' calls, or (without client tools) the
        ones waiting for an approval. With client tools an approval pause is text instead."""
        if self.client_calls:
            return ChatMessage.assistant(self.final_text or None, self.client_calls)
        note = self.approval_note()
        if note is not None:
            return ChatMessage.assistant("\n\n".join(filter(None, [self.final_text, note])))
        calls = tuple(
            ToolCall(id=p.tool_call_id, name=p.name, arguments=json.dumps(p.arguments))
            for p in self.pending
        )
        return ChatMessage.assistant(self.final_text or None, calls)

    def approval_note(self) -> str | None:
        """The text telling a client with tools of its own what waits for an approval; None
        when nothing waits or the turn had no client tools (the calls are shown instead)."""
        if not self.pending or not self.client_tools:
            return None
        names = ", ".join(sorted({p.name for p in self.pending}))
        return (
            f"Waiting for approval before running: {names}. Approve or reject with "
            f"POST /v1/conversations/{self.conversation.id}/approve."
        )


AgentEvent = (
    ContentDelta
    | ToolCallRequested
    | ToolFinished
    | ApprovalRequired
    | ClientToolsRequired
    | MessageStored
    | LLMCallFinished
    | RunFinished
)
