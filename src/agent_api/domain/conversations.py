"""Conversations: the aggregate the agent runs on, its messages and its approval state.

A conversation runs at most one agent run at a time. The run holds a lease (`run_id`,
`lease_expires_at`) so a crashed run does not lock the conversation forever: an expired lease
may be taken over, and a sweeper marks such runs failed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from agent_api.domain.chat import ChatMessage, ToolCall, Usage
from agent_api.domain.errors import InvalidRequest

TITLE_MAX_LENGTH = 500
MESSAGE_MAX_LENGTH = 100_000


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    RUNNING = "running"
    PENDING_APPROVAL = "pending_approval"
    AWAITING_TOOLS = "awaiting_tools"  # parked for the results of the client's own tools
    COMPLETED = "completed"
    FAILED = "failed"
    ARCHIVED = "archived"


# A new run may start from these states; `running` only once its lease has expired.
IDLE_STATUSES = (
    ConversationStatus.ACTIVE,
    ConversationStatus.COMPLETED,
    ConversationStatus.FAILED,
)


class AgentType(StrEnum):
    AUTO = "auto"
    GENERAL = "general"
    CODER = "coder"
    RESEARCHER = "researcher"


def make_title(first_message: str) -> str:
    """The first line of the first message, whitespace collapsed, cut to TITLE_MAX_LENGTH."""
    line = " ".join(first_message.split())
    if len(line) <= TITLE_MAX_LENGTH:
        return line
    return line[: TITLE_MAX_LENGTH - 1] + "…"


@dataclass(frozen=True, slots=True)
class Conversation:
    id: UUID
    user_id: UUID
    title: str
    status: ConversationStatus
    agent_type: AgentType
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
    tool_call_count: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    last_message_at: datetime | None = None
    run_id: UUID | None = None
    lease_expires_at: datetime | None = None
    # The head of the hash chain over the transcript a stateless client holds (see
    # `domain.fingerprints`); None when the conversation was last run another way.
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append to a conversation: the store gives it its id and its place (`seq`),
    and counts it (and its tokens) on the conversation."""

    conversation_id: UUID
    role: str
    created_at: datetime
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: int | None = None
    is_complete: bool = True
    context_dropped: int = 0
    parts: tuple[Mapping[str, Any], ...] = ()  # see `ChatMessage.parts`

    @classmethod
    def of_chat(cls, conversation_id: UUID, message: ChatMessage, now: datetime) -> NewMessage:
        """A message a client sent (its history or its turn), as it is to be stored."""
        return cls(
            conversation_id,
            message.role,
            now,
            content=message.content,
            tool_calls=tuple(message.tool_calls),
            tool_call_id=message.tool_call_id,
            name=message.name,
            parts=message.parts,
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. `is_complete` is false for an answer cut short (client gone, error).
    `context_dropped` counts the earlier messages left out of the context an answer was written
    in, to fit the model's context budget (0: it saw the whole conversation). `parts`: the
    content parts it was sent with (see `ChatMessage.parts`), else empty."""

    id: UUID
    conversation_id: UUID
    seq: int
    role: str
    created_at: datetime
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int | None = None
    is_complete: bool = True
    context_dropped: int = 0
    parts: tuple[Mapping[str, Any], ...] = ()

    def to_chat(self) -> ChatMessage:
        return ChatMessage(
            role=self.role,  # type: ignore[arg-type]
            content=self.content,
            tool_calls=self.tool_calls,
            tool_call_id=self.tool_call_id,
            name=self.name,
            parts=self.parts,
        )


@dataclass(frozen=True, slots=True)
class PendingToolCall:
    """A tool call waiting for its owner's decision (a `pending_approval` tool execution)."""

    execution_id: UUID
    tool_call_id: str
    name: str
    arguments: dict[str, Any]
    reason: str
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The owner's decision on one pending call. `arguments` replaces the call's arguments
    when the owner edited them (approved calls only)."""

    approved: bool
    reason: str | None = None
    arguments: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DecidedToolCall:
    pending: PendingToolCall
    decision: Decision

    @property
    def effective_arguments(self) -> dict[str, Any]:
        if self.decision.arguments is not None:
            return self.decision.arguments
        return self.pending.arguments


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One request deciding every pending call of a conversation.

    Without `tool_call_ids` the verdict `approved` applies to all pending calls. With them, the
    listed calls get the verdict and every other pending call the opposite one, so a single
    request can approve some parallel calls and reject the rest. `arguments` maps a call id to
    edited arguments for an approved call. `reason` is recorded and, for rejected calls, told
    to the model.
    """

    approved: bool
    reason: str | None = None
    tool_call_ids: tuple[str, ...] | None = None
    arguments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def decide(self, pending: list[PendingToolCall]) -> list[DecidedToolCall]:
        """Raises InvalidRequest naming calls that are not pending, or edits for calls that
        are not approved."""
        pending_ids = {call.tool_call_id for call in pending}
        named = set(self.tool_call_ids or ())
        unknown = (named | set(self.arguments)) - pending_ids
        if unknown:
            raise InvalidRequest(
                f"not pending approval: {', '.join(sorted(unknown))}", param="tool_call_ids"
            )
        decided = []
        for call in pending:
            approved = (
                self.approved if not named or call.tool_call_id in named else not self.approved
            )
            edited = self.arguments.get(call.tool_call_id)
            if edited is not None and not approved:
                raise InvalidRequest(
                    f"arguments given for {call.tool_call_id}, which is rejected",
                    param="arguments",
                )
            decided.append(DecidedToolCall(call, Decision(approved, self.reason, edited)))
        return decided


def repair_history(
    messages: list[ChatMessage], resuming: Collection[str] = ()
) -> list[ChatMessage]:
    """History as a valid chat sequence: every assistant tool call answered by a tool message.

    A run that crashed between asking for tools and storing their results leaves calls
    unanswered; the model is told they were not executed instead of receiving an invalid
    sequence. Calls in `resuming` (approved calls about to run) are left open when they belong
    to the last assistant message. Tool messages that answer nothing are dropped.
    """
    out: list[ChatMessage] = []
    open_calls: dict[str, ToolCall] = {}

    def close_open_calls() -> None:
        for call in open_calls.values():
            out.append(
                ChatMessage(
                    role="tool",
                    content='{"error": "not executed: the run was interrupted"}',
                    tool_call_id=call.id,
                    name=call.name,
                )
            )
        open_calls.clear()

    for message in messages:
        if message.role == "tool":
            if message.tool_call_id in open_calls:
                open_calls.pop(message.tool_call_id)
                out.append(message)
            continue
        close_open_calls()
        out.append(message)
        if message.role == "assistant":
            open_calls = {call.id: call for call in message.tool_calls}
    for call_id in resuming:
        open_calls.pop(call_id, None)
    close_open_calls()
    return out


def open_tool_calls(messages: Sequence[ChatMessage]) -> tuple[ToolCall, ...]:
    """The calls of the last assistant message that no tool message after it answers: in a
    conversation `awaiting_tools`, the client's calls it waits for."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None:
        return ()
    answered = {m.tool_call_id for m in messages[last + 1 :] if m.role == "tool"}
    return tuple(c for c in messages[last].tool_calls if c.id not in answered)


def check_tool_results(open_calls: Sequence[ToolCall], results: Sequence[ChatMessage]) -> None:
    """Raises InvalidRequest (param `messages`) unless `results` are tool messages answering
    each of `open_calls` exactly once, and nothing else."""
    expected = {call.id for call in open_calls}
    given = [m.tool_call_id for m in results if m.role == "tool"]
    if len(given) != len(results):
        raise InvalidRequest("only tool messages may follow the tool calls", param="messages")
    twice = sorted({i for i in given if given.count(i) > 1 and i is not None})
    unknown = sorted({i for i in given if i not in expected and i is not None})
    missing = sorted(expected.difference(i for i in given if i is not None))
    for problem, ids in (
        ("answered twice", twice),
        ("not waiting for a result", unknown),
        ("missing a result", missing),
    ):
        if ids:
            raise InvalidRequest(f"tool calls {problem}: {', '.join(ids)}", param="messages")
