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
    """The last event of a run. `status` is the conversation's new status."""

    conversation: Conversation
    usage: Usage
    messages: tuple[Message, ...]
    pending: tuple[PendingToolCall, ...] = ()
    final_text: str = ""
    finish_reason: str = "stop"
    logprobs: Any | None = None  # of the run's last model call, as the upstream sent them

    def answer(self) -> ChatMessage:
        """The assistant message the client is shown for this run: the final text, and the
        calls the client must act on (the ones waiting for an approval)."""
        calls = tuple(
            ToolCall(id=p.tool_call_id, name=p.name, arguments=json.dumps(p.arguments))
            for p in self.pending
        )
        return ChatMessage.assistant(self.final_text or None, calls)


AgentEvent = (
    ContentDelta
    | ToolCallRequested
    | ToolFinished
    | ApprovalRequired
    | MessageStored
    | LLMCallFinished
    | RunFinished
)
