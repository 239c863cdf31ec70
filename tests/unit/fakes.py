"""Hand-written fakes of the ports in `agent_api.application.ports*`, for unit tests.

Each fake keeps its state in plain dicts that tests may inspect, and honours the port's
documented contract (e.g. `FakeUserRepository.add` raises EmailTaken, `FakeSessionRepository.
rotate` is a compare-and-swap). Add fakes for new ports here, one class per port.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from agent_api.domain.api_keys import ApiKey
from agent_api.domain.chat import ChatMessage, ToolCall, ToolSpec
from agent_api.domain.conversations import (
    IDLE_STATUSES,
    Conversation,
    ConversationStatus,
    DecidedToolCall,
    Message,
    NewMessage,
    PendingToolCall,
)
from agent_api.domain.errors import EmailTaken, ServiceUnavailable
from agent_api.domain.sessions import Session
from agent_api.domain.users import User


class FakeClock:
    """A settable clock: `clock()` returns `now`; `advance()` moves it forward."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class FakeUserRepository:
    def __init__(self) -> None:
        self.users: dict[UUID, User] = {}

    async def add(self, user: User) -> None:
        if any(existing.email == user.email for existing in self.users.values()):
            raise EmailTaken()
        self.users[user.id] = user

    async def get(self, user_id: UUID) -> User | None:
        return self.users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    async def set_password_hash(self, user_id: UUID, password_hash: str, now: datetime) -> None:
        user = self.users[user_id]
        self.users[user_id] = dataclasses.replace(user, password_hash=password_hash, updated_at=now)

    def deactivate(self, user_id: UUID) -> None:
        """Test helper: mark a user inactive."""
        self.users[user_id] = dataclasses.replace(self.users[user_id], is_active=False)


class FakeSessionRepository:
    def __init__(self, users: FakeUserRepository) -> None:
        self._users = users
        self.sessions: dict[UUID, Session] = {}
        self.revoked_reasons: dict[UUID, str] = {}

    async def add(self, session: Session) -> None:
        self.sessions[session.id] = session

    async def get_active_with_user(
        self, session_id: UUID, now: datetime
    ) -> tuple[Session, User] | None:
        session = self.sessions.get(session_id)
        if session is None or not session.is_active(now):
            return None
        user = self._users.users.get(session.user_id)
        return None if user is None else (session, user)

    async def rotate(
        self, session_id: UUID, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> bool:
        session = self.sessions.get(session_id)
        if session is None or not session.is_active(now) or session.refresh_jti != old_jti:
            return False
        self.sessions[session_id] = dataclasses.replace(
            session, refresh_jti=new_jti, expires_at=expires_at
        )
        return True

    async def revoke(self, session_id: UUID, reason: str, now: datetime) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.revoked_at is not None:
            return
        self.sessions[session_id] = dataclasses.replace(session, revoked_at=now)
        self.revoked_reasons[session_id] = reason

    async def revoke_all_for_user(
        self, user_id: UUID, reason: str, now: datetime, *, keep: UUID | None = None
    ) -> int:
        targets = [
            s.id
            for s in self.sessions.values()
            if s.user_id == user_id and s.revoked_at is None and s.id != keep
        ]
        for session_id in targets:
            await self.revoke(session_id, reason, now)
        return len(targets)


class FakeApiKeyRepository:
    def __init__(self, users: FakeUserRepository) -> None:
        self._users = users
        self.keys: dict[str, ApiKey] = {}
        self.touches = 0

    def put(self, key: ApiKey) -> None:
        """Test helper: store a key (indexed by its hash)."""
        self.keys[key.key_hash] = key

    async def get_by_hash_with_user(self, key_hash: str) -> tuple[ApiKey, User] | None:
        key = self.keys.get(key_hash)
        if key is None:
            return None
        user = self._users.users.get(key.user_id)
        return None if user is None else (key, user)

    async def add(self, key: ApiKey) -> None:
        self.keys[key.key_hash] = key

    async def list_for_user(self, user_id: UUID) -> list[ApiKey]:
        owned = [k for k in self.keys.values() if k.user_id == user_id]
        return sorted(owned, key=lambda k: k.created_at, reverse=True)

    async def revoke(self, user_id: UUID, key_id: UUID, now: datetime) -> bool:
        for key_hash, key in self.keys.items():
            if key.id == key_id and key.user_id == user_id:
                if key.revoked_at is None:
                    self.keys[key_hash] = dataclasses.replace(key, revoked_at=now)
                return True
        return False

    async def revoke_all_for_user(self, user_id: UUID, now: datetime) -> int:
        revoked = 0
        for key_hash, key in self.keys.items():
            if key.user_id == user_id and key.revoked_at is None:
                self.keys[key_hash] = dataclasses.replace(key, revoked_at=now)
                revoked += 1
        return revoked

    async def count_live_for_user(self, user_id: UUID, now: datetime) -> int:
        return sum(1 for k in self.keys.values() if k.user_id == user_id and k.is_usable(now))

    async def touch_last_used(self, key_id: UUID, now: datetime) -> None:
        for key_hash, key in self.keys.items():
            if key.id == key_id and key.needs_touch(now):
                self.keys[key_hash] = dataclasses.replace(key, last_used_at=now)
                self.touches += 1


class FakeHasher:
    """A fast, transparent PasswordHasher: `fake$<password>` is current; `legacy$<password>`
    stands for an outdated scheme (like the Go database's bcrypt) and is upgraded on verify."""

    CURRENT = "fake$"
    LEGACY = "legacy$"

    def __init__(self) -> None:
        self.dummy_verifies = 0
        self.verifies = 0

    async def hash(self, password: str) -> str:
        return self.CURRENT + password

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        self.verifies += 1
        for prefix in (self.CURRENT, self.LEGACY):
            if password_hash.startswith(prefix):
                matches = password_hash.removeprefix(prefix) == password
                outdated = prefix == self.LEGACY
                return matches, (await self.hash(password) if matches and outdated else None)
        return False, None

    async def dummy_verify(self) -> None:
        self.dummy_verifies += 1


class FakeTokenCounter:
    """One token per character of content and tool-call arguments, `per_message` more for
    each message, one per tool definition. Records how many messages it counted."""

    def __init__(self, per_message: int = 1) -> None:
        self.per_message = per_message
        self.counted = 0

    def count_message(self, message: ChatMessage) -> int:
        self.counted += 1
        calls = sum(len(call.arguments) for call in message.tool_calls)
        return self.per_message + len(message.content or "") + calls

    def count_tools(self, tools: Sequence[ToolSpec]) -> int:
        return len(tools)


class FakeRunSlots:
    """RunSlots in a dict (no leases expire unless `expire` is called); `down` makes every call
    fail like an unreachable store."""

    def __init__(self) -> None:
        self.holders: dict[str, set[str]] = {}
        self.down = False
        self.renewals = 0

    def _check(self) -> None:
        if self.down:
            raise ServiceUnavailable("store down", retry_after=1)

    async def acquire(
        self, run_id: str, holders: Sequence[tuple[str, int]], lease_seconds: float
    ) -> int | None:
        self._check()
        for index, (holder, limit) in enumerate(holders):
            if len(self.holders.get(holder, set()) - {run_id}) >= limit:
                return index
        for holder, _ in holders:
            self.holders.setdefault(holder, set()).add(run_id)
        return None

    async def renew(self, run_id: str, holders: Sequence[str], lease_seconds: float) -> None:
        self._check()
        self.renewals += 1

    async def release(self, run_id: str, holders: Sequence[str]) -> None:
        self._check()
        for holder in holders:
            self.holders.get(holder, set()).discard(run_id)

    def expire(self) -> None:
        """As if every lease ran out (a crashed holder)."""
        self.holders.clear()


class FakeConversationRepository:
    """`ConversationRepository` in memory, honouring its contract: scoped to the owner, claims
    are compare-and-set (a claim holds while its lease runs), deleted conversations are gone.
    `fail_on_append` makes the next appends raise it (a store failing mid-turn)."""

    def __init__(self) -> None:
        self.conversations: dict[UUID, Conversation] = {}
        self.stored: dict[UUID, list[Message]] = {}
        self.pending: dict[UUID, list[PendingToolCall]] = {}
        self.decisions: list[DecidedToolCall] = []
        # (model, prompt tokens, completion tokens) recorded with each answer
        self.usage: list[tuple[str, int, int]] = []
        self.fail_on_append: Exception | None = None
        self.round_trips = 0  # calls that stored messages (append, append_many)

    async def create(self, conversation: Conversation) -> None:
        self.conversations[conversation.id] = conversation
        self.stored[conversation.id] = []
        self.pending[conversation.id] = []

    async def get(self, conversation_id: UUID, user_id: UUID) -> Conversation | None:
        found = self.conversations.get(conversation_id)
        return found if found is not None and found.user_id == user_id else None

    async def list_for_user(
        self,
        user_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None = None,
        status: ConversationStatus | None = None,
    ) -> list[Conversation]:
        rows = [
            c
            for c in self.conversations.values()
            if c.user_id == user_id
            and (status is None or c.status is status)
            and (before is None or (c.updated_at, c.id) < before)
        ]
        return sorted(rows, key=lambda c: (c.updated_at, c.id), reverse=True)[:limit]

    async def delete(self, conversation_id: UUID, user_id: UUID, now: datetime) -> bool:
        if await self.get(conversation_id, user_id) is None:
            return False
        del self.conversations[conversation_id]
        return True

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
        current = await self.get(conversation_id, user_id)
        if current is None:
            return None
        if fingerprint is not None:  # stored only with the claim, by `_claim`
            current = dataclasses.replace(current, fingerprint=fingerprint)
        if awaiting_tools:
            parked = current.status is ConversationStatus.AWAITING_TOOLS
            return self._claim(current, run_id, now, lease) if parked else None
        idle = current.status in IDLE_STATUSES
        expired = current.status is ConversationStatus.RUNNING and (
            current.lease_expires_at is not None and current.lease_expires_at < now
        )
        return self._claim(current, run_id, now, lease) if idle or expired else None

    async def apply_decision(
        self,
        conversation_id: UUID,
        user_id: UUID,
        run_id: UUID,
        decided: Sequence[DecidedToolCall],
        now: datetime,
        lease: timedelta,
    ) -> bool:
        current = await self.get(conversation_id, user_id)
        if current is None or current.status is not ConversationStatus.PENDING_APPROVAL:
            return False
        self._claim(current, run_id, now, lease)
        self.decisions.extend(decided)
        self.pending[conversation_id] = []
        return True

    def _claim(
        self, current: Conversation, run_id: UUID, now: datetime, lease: timedelta
    ) -> Conversation:
        claimed = dataclasses.replace(
            current,
            status=ConversationStatus.RUNNING,
            run_id=run_id,
            lease_expires_at=now + lease,
            updated_at=now,
        )
        self.conversations[current.id] = claimed
        return claimed

    async def renew_lease(
        self, conversation_id: UUID, run_id: UUID, lease_expires_at: datetime
    ) -> bool:
        current = self.conversations.get(conversation_id)
        if current is None or current.run_id != run_id:
            return False
        self.conversations[conversation_id] = dataclasses.replace(
            current, lease_expires_at=lease_expires_at
        )
        return True

    async def finish_run(
        self,
        conversation_id: UUID,
        run_id: UUID,
        status: ConversationStatus,
        now: datetime,
        *,
        fingerprint: str | None = None,
    ) -> Conversation | None:
        current = self.conversations.get(conversation_id)
        if current is None or current.run_id != run_id:
            return None
        finished = dataclasses.replace(
            current,
            status=status,
            run_id=None,
            lease_expires_at=None,
            updated_at=now,
            fingerprint=fingerprint,
        )
        self.conversations[conversation_id] = finished
        return finished

    async def fail_expired_runs(self, now: datetime) -> int:
        expired = [
            c
            for c in self.conversations.values()
            if c.status is ConversationStatus.RUNNING
            and c.lease_expires_at is not None
            and c.lease_expires_at <= now
        ]
        for c in expired:  # the run's fingerprint stays: a retry of its request finds it
            await self.finish_run(
                c.id,
                c.run_id or UUID(int=0),
                ConversationStatus.FAILED,
                now,
                fingerprint=c.fingerprint,
            )
        return len(expired)

    async def append(self, message: NewMessage) -> Message:
        if self.fail_on_append is not None:
            raise self.fail_on_append
        self.round_trips += 1
        return self._store(message)

    async def append_many(self, conversation_id: UUID, new: Sequence[NewMessage]) -> list[Message]:
        if not new:
            return []
        if self.fail_on_append is not None:
            raise self.fail_on_append
        if any(m.conversation_id != conversation_id for m in new):
            raise ValueError("append_many stores messages of one conversation")
        self.round_trips += 1
        return [self._store(m) for m in new]

    async def find_thread(self, user_id: UUID, heads: Sequence[str]) -> Conversation | None:
        rank = {head: i for i, head in enumerate(heads)}
        found = [
            c for c in self.conversations.values() if c.user_id == user_id and c.fingerprint in rank
        ]
        if not found:
            return None
        return min(found, key=lambda c: (rank[c.fingerprint or ""], -c.updated_at.timestamp()))

    def _store(self, message: NewMessage) -> Message:
        m = message
        stored = Message(
            id=uuid.uuid4(),
            conversation_id=m.conversation_id,
            seq=len(self.stored[m.conversation_id]) + 1,
            role=m.role,
            created_at=m.created_at,
            content=m.content,
            tool_calls=m.tool_calls,
            tool_call_id=m.tool_call_id,
            name=m.name,
            model=m.model,
            prompt_tokens=m.usage.prompt_tokens,
            completion_tokens=m.usage.completion_tokens,
            latency_ms=m.latency_ms,
            is_complete=m.is_complete,
            context_dropped=m.context_dropped,
            parts=m.parts,
        )
        self.stored[message.conversation_id].append(stored)
        return stored

    async def append_answer(
        self, message: NewMessage, user_id: UUID, api_key_id: UUID | None
    ) -> Message:
        stored = await self.append(message)
        self.usage.append(
            (message.model or "", message.usage.prompt_tokens, message.usage.completion_tokens)
        )
        return stored

    async def messages(self, conversation_id: UUID) -> list[Message]:
        return list(self.stored.get(conversation_id, []))

    async def chat_history(self, conversation_id: UUID) -> list[ChatMessage]:
        return [m.to_chat() for m in self.stored.get(conversation_id, [])]

    async def pending_approvals(self, conversation_id: UUID) -> list[PendingToolCall]:
        return list(self.pending.get(conversation_id, []))

    async def count_pending_approvals(self) -> int:
        return sum(len(calls) for calls in self.pending.values())

    async def add_pending_approvals(
        self,
        conversation_id: UUID,
        user_id: UUID,
        api_key_id: UUID | None,
        message_id: UUID | None,
        requests: Sequence[tuple[ToolCall, dict[str, Any], str]],
        now: datetime,
    ) -> list[PendingToolCall]:
        added = [
            PendingToolCall(
                execution_id=uuid.uuid4(),
                tool_call_id=call.id,
                name=call.name,
                arguments=arguments,
                reason=reason,
                requested_at=now,
            )
            for call, arguments, reason in requests
        ]
        self.pending[conversation_id].extend(added)
        return added
