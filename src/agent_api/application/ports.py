"""Ports: one Protocol per external system. Adapters live in `agent_api.infrastructure`;
hand-written fakes for unit tests live in `tests/`.

Contract shared by every port: a dependency that cannot be reached raises
`ServiceUnavailable`; a missing object is `None` (never an exception) unless stated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol
from uuid import UUID

from agent_api.domain.api_keys import ApiKey
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
from agent_api.domain.sessions import Session
from agent_api.domain.users import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises EmailTaken when the (normalised) email exists."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def set_password_hash(self, user_id: UUID, password_hash: str, now: datetime) -> None: ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get_active_with_user(
        self, session_id: UUID, now: datetime
    ) -> tuple[Session, User] | None:
        """The session and its user, or None when it is missing, revoked or expired."""

    async def rotate(
        self, session_id: UUID, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> bool:
        """Atomically replace the current refresh jti `old_jti` by `new_jti`. False when
        `old_jti` is not current (reuse, or a concurrent refresh won) or the session is over."""

    async def revoke(self, session_id: UUID, reason: str, now: datetime) -> None:
        """Idempotent: revoking a revoked session keeps the first revocation."""

    async def revoke_all_for_user(
        self, user_id: UUID, reason: str, now: datetime, *, keep: UUID | None = None
    ) -> int:
        """Revokes every live session of the user except `keep`, in one statement; returns
        how many were revoked. Already revoked sessions keep their first revocation."""


class ApiKeyRepository(Protocol):
    async def get_by_hash_with_user(self, key_hash: str) -> tuple[ApiKey, User] | None: ...

    async def add(self, key: ApiKey) -> None: ...

    async def list_for_user(self, user_id: UUID) -> list[ApiKey]:
        """Every key of the user (revoked ones too), newest first."""

    async def revoke(self, user_id: UUID, key_id: UUID, now: datetime) -> bool:
        """Revokes the user's key; idempotent (keeps the first revocation). False when the
        user has no such key (another user's key counts as missing)."""

    async def revoke_all_for_user(self, user_id: UUID, now: datetime) -> int:
        """Revokes every unrevoked key of the user in one statement; returns how many."""

    async def count_live_for_user(self, user_id: UUID, now: datetime) -> int:
        """How many of the user's keys are neither revoked nor expired at `now`."""

    async def touch_last_used(self, key_id: UUID, now: datetime) -> None:
        """Sets `last_used_at = now` unless it was set less than LAST_USED_RESOLUTION ago;
        cheap to call often (at most one write per key per resolution, across replicas)."""


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, new hash to store when the stored one is outdated, e.g. bcrypt)."""

    async def dummy_verify(self) -> None:
        """Spend the time of one verification (for unknown emails: no enumeration by timing)."""


class WindowState(NamedTuple):
    """One rate-limit window after a hit."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until a refused caller may try again (a slot frees up)."""


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> WindowState:
        """Counts one request of `key` against `limit` per trailing `window_seconds`.

        Atomic: of any number of concurrent hits on a fresh window exactly `limit` are
        allowed; a refused hit is not counted. Raises ServiceUnavailable when the store
        cannot be reached (the caller decides whether to fail open or closed)."""

    async def peek(self, key: str, limit: int, window_seconds: int) -> WindowState:
        """The window of `key` as `hit` would see it, counting nothing: `allowed` is whether
        one more hit would pass. Raises ServiceUnavailable like `hit`."""

    async def aclose(self) -> None: ...


class RunSlots(Protocol):
    """Leases on concurrent agent runs, per holder (a credential, a user), shared by every
    replica. A lease that is not renewed expires: a crashed process frees its slots."""

    async def acquire(
        self, run_id: str, holders: Sequence[tuple[str, int]], lease_seconds: float
    ) -> int | None:
        """Atomically, for every `(holder, limit)`: drops expired leases, and when each holder
        has fewer than `limit` live runs adds `run_id` to all of them, leased for
        `lease_seconds`. Returns None when taken; otherwise the index of the first full holder
        (and nothing is added). Raises ServiceUnavailable."""

    async def renew(self, run_id: str, holders: Sequence[str], lease_seconds: float) -> None:
        """Extends the lease of `run_id` (a lease already expired and dropped stays dropped).
        Raises ServiceUnavailable."""

    async def release(self, run_id: str, holders: Sequence[str]) -> None:
        """Frees the slots of `run_id` (idempotent). Raises ServiceUnavailable."""


UsageGrouping = Literal["day", "model", "api_key"]


class UsageBucket(NamedTuple):
    """Token totals of one group: `key` is the day (`YYYY-MM-DD`, UTC), the model, or the
    API key id as a string (None for usage through session tokens)."""

    key: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageRepository(Protocol):
    async def record(
        self,
        user_id: UUID,
        api_key_id: UUID | None,
        conversation_id: UUID | None,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        at: datetime | None = None,
    ) -> None:
        """Stores the token usage of one LLM call (at `at`, default now)."""

    async def summarize(
        self,
        user_id: UUID,
        start: datetime,
        end: datetime,
        group_by: UsageGrouping,
        *,
        api_key_id: UUID | None = None,
    ) -> list[UsageBucket]:
        """The user's usage with `start <= time < end` (only through `api_key_id` when given),
        one bucket per group, ordered by key (None first)."""


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
        self, conversation_id: UUID, user_id: UUID, run_id: UUID, now: datetime, lease: timedelta
    ) -> Conversation | None:
        """`running` under `run_id` if idle or its lease expired; None when busy or not the
        caller's."""

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
        self, conversation_id: UUID, run_id: UUID, status: ConversationStatus, now: datetime
    ) -> Conversation | None:
        """Ends run `run_id` with `status`; None if the run no longer holds the conversation."""

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

    async def messages(self, conversation_id: UUID) -> list[Message]: ...

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
