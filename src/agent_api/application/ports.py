"""Ports: one Protocol per external system. Adapters live in `agent_api.infrastructure`;
hand-written fakes for unit tests live in `tests/`. This module holds the conversation and
model ports; accounts and credentials are in `ports_auth`, shared limits in `ports_limits`,
the usage ledger in `ports_usage`.

Contract shared by every port: a dependency that cannot be reached raises
`ServiceUnavailable`; a missing object is `None` (never an exception) unless stated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from agent_api.domain.chat import (
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    ToolCall,
    ToolSpec,
)
from agent_api.domain.conversations import (
    Conversation,
    ConversationStatus,
    DecidedToolCall,
    Message,
    NewMessage,
    PendingToolCall,
)


class ConversationRepository(Protocol):
    """Conversations with their messages and pending approvals, always scoped to the owner.

    Run ownership changes are compare-and-set: of concurrent claims on one conversation exactly
    one succeeds, and an approved tool call is started at most once."""

    async def create(self, conversation: Conversation) -> None: ...

    async def get(self, conversation_id: UUID, user_id: UUID) -> Conversation | None:
        """None when missing, soft-deleted or owned by someone else."""

    async def list_for_user(
        self,
        user_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None = None,
        status: ConversationStatus | None = None,
    ) -> list[Conversation]:
        """Most recently updated first; `before` is the (updated_at, id) keyset cursor."""

    async def delete(self, conversation_id: UUID, user_id: UUID, now: datetime) -> bool: ...

    async def claim_run(
        self,
        conversation_id: UUID,
        user_id: UUID,
        run_id: UUID,
        now: datetime,
        lease: timedelta,
        *,
        awaiting_tools: bool = False,
        fingerprint: str | None = None,
    ) -> Conversation | None:
        """`running` under `run_id` if idle or its lease expired — or, with `awaiting_tools`,
        only if it is `awaiting_tools` (parked for the client's tool results); None when it is
        not claimable so or not the caller's. A `fingerprint` (a stateless request's
        transcript head) is written by the same statement; None leaves the stored one."""

    async def apply_decision(
        self,
        conversation_id: UUID,
        user_id: UUID,
        run_id: UUID,
        decided: Sequence[DecidedToolCall],
        now: datetime,
        lease: timedelta,
    ) -> bool:
        """Atomically `pending_approval` -> `running` under `run_id` and every call of
        `decided` (as `ApprovalRequest.decide` made them) recorded. False, changing nothing,
        when the conversation is not (or no longer) pending approval or not the caller's."""

    async def renew_lease(
        self, conversation_id: UUID, run_id: UUID, lease_expires_at: datetime
    ) -> bool: ...

    async def finish_run(
        self,
        conversation_id: UUID,
        run_id: UUID,
        status: ConversationStatus,
        now: datetime,
        *,
        fingerprint: str | None = None,
    ) -> Conversation | None:
        """Ends run `run_id` with `status` and sets the conversation's fingerprint to
        `fingerprint` (None clears it), in one statement; None if the run no longer holds
        the conversation."""

    async def fail_expired_runs(self, now: datetime) -> int:
        """Marks `failed` every running conversation whose lease has expired."""

    async def append(self, message: NewMessage) -> Message:
        """Stores the conversation's next message and adds it to the conversation's counters;
        returns it as stored (labels too long for the store are shortened, text it cannot hold
        replaced)."""

    async def append_answer(
        self, message: NewMessage, user_id: UUID, api_key_id: UUID | None
    ) -> Message:
        """`append` an LLM answer and record its tokens (`message.usage`, `message.model`) as
        the usage of `user_id` through `api_key_id`, atomically: both or neither."""

    async def append_many(self, conversation_id: UUID, new: Sequence[NewMessage]) -> list[Message]:
        """`append` for the messages `new` of one conversation, in order, in one round trip
        whatever their number; returns them as stored, in order (consecutive `seq`)."""

    async def find_thread(self, user_id: UUID, heads: Sequence[str]) -> Conversation | None:
        """In one query, the user's live conversation whose fingerprint is the earliest of
        `heads` any has (callers list the longest transcript prefix first), the most recently
        updated among equals; None when no conversation of the user has any of them."""

    async def messages(self, conversation_id: UUID) -> list[Message]: ...

    async def chat_history(self, conversation_id: UUID) -> list[ChatMessage]:
        """The conversation's messages in order, as the model reads them (`Message.to_chat`),
        read without what only a listing needs: the cheap read a turn's context is built from."""

    async def pending_approvals(self, conversation_id: UUID) -> list[PendingToolCall]: ...

    async def count_pending_approvals(self) -> int:
        """Tool calls waiting for a decision, across all conversations."""

    async def add_pending_approvals(
        self,
        conversation_id: UUID,
        user_id: UUID,
        api_key_id: UUID | None,
        message_id: UUID | None,
        requests: Sequence[tuple[ToolCall, dict[str, Any], str]],
        now: datetime,
    ) -> list[PendingToolCall]:
        """Records (call, arguments, reason) requests as executions waiting for a decision."""


class ChatModel(Protocol):
    """A language model behind the OpenAI chat shape (adapters: OpenAICompatibleChatModel,
    DemoChatModel). Failures raise UpstreamFailed (502) or UpstreamTimeout (504); a request
    the upstream refuses as invalid (e.g. too long for the model) raises InvalidRequest."""

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """An async generator: TextDelta/ToolCallDelta events as they arrive, then exactly one
        StreamEnd, last. Closing it early (`aclose()`, or cancelling the consuming task) stops
        the upstream call promptly. Errors are raised from the iteration; once an event has
        been yielded nothing is retried."""
        ...


class TokenCounter(Protocol):
    """How many tokens of one model's context window a request's parts take (adapters:
    TiktokenCounter for models whose tokenizer ships with us, ByteEstimateCounter otherwise).
    Pure CPU work, no I/O once built; safe to call from a worker thread. A count includes the
    framing the chat format adds around the part, and is never below the model's own count
    by more than that framing allowance (the byte estimate never below it at all)."""

    def count_message(self, message: ChatMessage) -> int:
        """Tokens of one message: content, tool calls, name and its framing; its images,
        audio and files by a documented estimate (never their base64 as text)."""

    def count_tools(self, tools: Sequence[ToolSpec]) -> int:
        """Tokens the tool definitions offered with a request take, plus the request's fixed
        framing (the primer of the answer)."""
