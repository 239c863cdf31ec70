"""SqlConversationRepository: conversations, their messages and pending approvals in SQL.

Run ownership is compare-and-set on the conversation row (status + run_id + lease), so
concurrent claims have exactly one winner on PostgreSQL and SQLite alike.

Text written here may come from the language model rather than from a client (its answer,
its tool calls' ids, names and arguments), so it cannot be refused at the edge; it is made
storable instead (see `storable` and `fit`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload
from uuid import UUID

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_api.domain.chat import ChatMessage, ToolCall
from agent_api.domain.conversations import (
    IDLE_STATUSES,
    AgentType,
    Conversation,
    ConversationStatus,
    DecidedToolCall,
    Message,
    NewMessage,
    PendingToolCall,
)
from agent_api.domain.text import storable
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import conversations, llm_usage, messages, tool_executions

_live = conversations.c.deleted_at.is_(None)

_NAME_LENGTH: int = messages.c.name.type.length  # type: ignore[attr-defined]
_CALL_ID_LENGTH: int = messages.c.tool_call_id.type.length  # type: ignore[attr-defined]
_MODEL_LENGTH: int = messages.c.model.type.length  # type: ignore[attr-defined]


@overload
def fit(value: str, limit: int) -> str: ...
@overload
def fit(value: None, limit: int) -> None: ...
def fit(value: str | None, limit: int) -> str | None:
    """`value` made storable and at most `limit` characters. A longer value keeps its head and
    ends with a hash of the whole, so it stays distinct and the same value always maps to the
    same result: a tool call's id shortened on the assistant message still matches the id
    shortened on the tool message that answers it."""
    if value is None:
        return None
    value = storable(value)
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{value[: limit - len(digest) - 1]}~{digest}"


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        user_id=row.user_id,
        title=row.title,
        status=ConversationStatus(row.status),
        agent_type=AgentType(row.agent_type),
        model=row.model,
        created_at=row.created_at,
        updated_at=row.updated_at,
        message_count=row.message_count,
        tool_call_count=row.tool_call_count,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        last_message_at=row.last_message_at,
        run_id=row.run_id,
        lease_expires_at=row.lease_expires_at,
        fingerprint=row.fingerprint,
    )


def _message(row: Any) -> Message:
    calls = tuple(ToolCall.from_openai(c) for c in row.tool_calls or ())
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        role=row.role,
        created_at=row.created_at,
        content=row.content,
        parts=tuple(row.content_parts or ()),
        tool_calls=calls,
        tool_call_id=row.tool_call_id,
        name=row.name,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        latency_ms=row.latency_ms,
        is_complete=row.is_complete,
        context_dropped=row.context_dropped,
    )


def _pending(row: Any) -> PendingToolCall:
    return PendingToolCall(
        execution_id=row.id,
        tool_call_id=row.tool_call_id,
        name=row.tool_name,
        arguments=row.original_arguments or {},
        reason=row.approval_reason or "",
        requested_at=row.created_at,
    )


def _wire_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]] | None:
    if not calls:
        return None
    return [
        ToolCall(
            id=fit(c.id, _CALL_ID_LENGTH),
            name=fit(c.name, _NAME_LENGTH),
            arguments=storable(c.arguments),
        ).to_openai()
        for c in calls
    ]


def _counted(new: Sequence[NewMessage]) -> dict[str, Any]:
    """The conversation's counters with `new` added (values for one UPDATE)."""
    c = conversations.c
    prompt = sum(m.usage.prompt_tokens for m in new)
    completion = sum(m.usage.completion_tokens for m in new)
    now = max(m.created_at for m in new)
    return {
        "message_count": c.message_count + len(new),
        "tool_call_count": c.tool_call_count + sum(len(m.tool_calls) for m in new),
        "prompt_tokens": c.prompt_tokens + prompt,
        "completion_tokens": c.completion_tokens + completion,
        "total_tokens": c.total_tokens + prompt + completion,
        "last_message_at": now,
        "updated_at": now,
    }


def _message_row(m: NewMessage, seq: int) -> dict[str, Any]:
    """The `messages` row of `m` at `seq`, made storable (see `append`)."""
    return {
        "id": uuid.uuid4(),
        "conversation_id": m.conversation_id,
        "seq": seq,
        "role": m.role,
        "content": storable(m.content),
        "content_parts": [storable(dict(part)) for part in m.parts] or None,
        "name": fit(m.name, _NAME_LENGTH),
        "tool_calls": _wire_calls(m.tool_calls),
        "tool_call_id": fit(m.tool_call_id, _CALL_ID_LENGTH),
        "model": fit(m.model, _MODEL_LENGTH),
        "prompt_tokens": m.usage.prompt_tokens,
        "completion_tokens": m.usage.completion_tokens,
        "latency_ms": m.latency_ms,
        "is_complete": m.is_complete,
        "context_dropped": m.context_dropped,
        "created_at": m.created_at,
    }


# Conversations sharing a transcript head are branches a client made from one point; past a
# few dozen, the most recent ones are the ones a client continues.
_THREAD_CANDIDATES = 50

_pending_rows = and_(
    tool_executions.c.status == "pending_approval", tool_executions.c.decision.is_(None)
)


class SqlConversationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, conversation: Conversation) -> None:
        c = conversation
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(conversations).values(
                    id=c.id,
                    user_id=c.user_id,
                    title=c.title,
                    status=c.status.value,
                    agent_type=c.agent_type.value,
                    model=c.model,
                    run_id=c.run_id,
                    lease_expires_at=c.lease_expires_at,
                    fingerprint=c.fingerprint,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                )
            )

    async def get(self, conversation_id: UUID, user_id: UUID) -> Conversation | None:
        query = select(conversations).where(
            conversations.c.id == conversation_id, conversations.c.user_id == user_id, _live
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _conversation(row) if row else None

    async def list_for_user(
        self,
        user_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None = None,
        status: ConversationStatus | None = None,
    ) -> list[Conversation]:
        query = select(conversations).where(conversations.c.user_id == user_id, _live)
        if status is not None:
            query = query.where(conversations.c.status == status.value)
        if before is not None:
            at, last_id = before
            query = query.where(
                or_(
                    conversations.c.updated_at < at,
                    and_(conversations.c.updated_at == at, conversations.c.id < last_id),
                )
            )
        query = query.order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
        async with self._db.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [_conversation(row) for row in rows]

    async def delete(self, conversation_id: UUID, user_id: UUID, now: datetime) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation_id,
                    conversations.c.user_id == user_id,
                    _live,
                )
                .values(deleted_at=now, updated_at=now)
            )
        return result.rowcount == 1

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
        claimable = (
            conversations.c.status == ConversationStatus.AWAITING_TOOLS.value
            if awaiting_tools
            else or_(
                conversations.c.status.in_([s.value for s in IDLE_STATUSES]),
                and_(
                    conversations.c.status == ConversationStatus.RUNNING.value,
                    conversations.c.lease_expires_at < now,
                ),
            )
        )
        async with self._db.transaction() as conn:
            return await self._claim(
                conn, conversation_id, user_id, run_id, now, lease, claimable, fingerprint
            )

    async def apply_decision(
        self,
        conversation_id: UUID,
        user_id: UUID,
        run_id: UUID,
        decided: Sequence[DecidedToolCall],
        now: datetime,
        lease: timedelta,
    ) -> bool:
        pending_state = conversations.c.status == ConversationStatus.PENDING_APPROVAL.value
        async with self._db.transaction() as conn:
            claimed = await self._claim(
                conn, conversation_id, user_id, run_id, now, lease, pending_state
            )
            if claimed is None:
                return False
            for item in decided:
                await conn.execute(
                    update(tool_executions)
                    .where(tool_executions.c.id == item.pending.execution_id)
                    .values(
                        decision="approved" if item.decision.approved else "rejected",
                        decided_by=user_id,
                        decided_at=now,
                        decision_reason=item.decision.reason,
                        edited_arguments=item.decision.arguments,
                        arguments=item.effective_arguments,
                        status="pending_approval" if item.decision.approved else "rejected",
                        completed_at=None if item.decision.approved else now,
                    )
                )
        return True

    async def _claim(
        self,
        conn: AsyncConnection,
        conversation_id: UUID,
        user_id: UUID,
        run_id: UUID,
        now: datetime,
        lease: timedelta,
        condition: Any,
        fingerprint: str | None = None,
    ) -> Conversation | None:
        # The fingerprint is written only by a stateless claim; others leave it until the end.
        kept = {} if fingerprint is None else {"fingerprint": fingerprint}
        result = await conn.execute(
            update(conversations)
            .where(
                conversations.c.id == conversation_id,
                conversations.c.user_id == user_id,
                _live,
                condition,
            )
            .values(
                status=ConversationStatus.RUNNING.value,
                run_id=run_id,
                lease_expires_at=now + lease,
                updated_at=now,
                **kept,
            )
            .returning(*conversations.c)
        )
        row = result.first()
        return _conversation(row) if row else None

    async def renew_lease(
        self, conversation_id: UUID, run_id: UUID, lease_expires_at: datetime
    ) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.run_id == run_id)
                .values(lease_expires_at=lease_expires_at)
            )
        return result.rowcount == 1

    async def finish_run(
        self,
        conversation_id: UUID,
        run_id: UUID,
        status: ConversationStatus,
        now: datetime,
        *,
        fingerprint: str | None = None,
    ) -> Conversation | None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.run_id == run_id)
                .values(
                    status=status.value,
                    run_id=None,
                    lease_expires_at=None,
                    updated_at=now,
                    fingerprint=fingerprint,
                )
                .returning(*conversations.c)
            )
            row = result.first()
        return _conversation(row) if row else None

    async def fail_expired_runs(self, now: datetime) -> int:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(conversations)
                .where(
                    conversations.c.status == ConversationStatus.RUNNING.value,
                    conversations.c.lease_expires_at < now,
                )
                .values(
                    status=ConversationStatus.FAILED.value,
                    run_id=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        return int(result.rowcount)

    async def append(self, message: NewMessage) -> Message:
        """Appends a message and counts it on its conversation; returns it as stored.

        Never refuses text: NUL characters and lone surrogates (in the content, the tool calls
        or the names) are stored as U+FFFD, and a name, tool call id or model longer than its
        column is shortened by `fit` (which keeps calls and their results paired). Truncating
        rather than refusing, because these values come from the model: refusing would fail
        the whole run for a value that is only a label, and the model never needs to quote a
        stored id back verbatim."""
        async with self._db.transaction() as conn:
            return await self._append(conn, message)

    async def append_answer(
        self, message: NewMessage, user_id: UUID, api_key_id: UUID | None
    ) -> Message:
        """`append`, and the answer's tokens recorded as the usage of `user_id` (through
        `api_key_id`), in one transaction: both or neither."""
        usage = message.usage
        if usage.prompt_tokens < 0 or usage.completion_tokens < 0:
            raise ValueError("token counts cannot be negative")
        async with self._db.transaction() as conn:
            stored = await self._append(conn, message)
            await conn.execute(
                insert(llm_usage).values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    api_key_id=api_key_id,
                    conversation_id=message.conversation_id,
                    model=message.model or "",
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    total_tokens=usage.prompt_tokens + usage.completion_tokens,
                    created_at=datetime.now(UTC),
                )
            )
        return stored

    async def _append(self, conn: AsyncConnection, message: NewMessage) -> Message:
        m = message
        # The counter update hands out the sequence number: one statement, no race.
        counted = await conn.execute(
            update(conversations)
            .where(conversations.c.id == m.conversation_id)
            .values(**_counted([m]))
            .returning(conversations.c.message_count)
        )
        seq = counted.scalar_one()
        row = (
            await conn.execute(
                insert(messages).values(**_message_row(m, seq)).returning(*messages.c)
            )
        ).one()
        return _message(row)

    async def append_many(self, conversation_id: UUID, new: Sequence[NewMessage]) -> list[Message]:
        """`append` for several messages of one conversation, in order, in one transaction of
        two statements whatever their number: the counters take them all at once (handing out
        their sequence numbers), then one multi-row insert stores them."""
        if not new:
            return []
        if any(m.conversation_id != conversation_id for m in new):
            raise ValueError("append_many stores messages of one conversation")
        async with self._db.transaction() as conn:
            counted = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(**_counted(new))
                .returning(conversations.c.message_count)
            )
            first = counted.scalar_one() - len(new) + 1
            rows = [_message_row(m, first + i) for i, m in enumerate(new)]
            result = await conn.execute(
                insert(messages).returning(*messages.c, sort_by_parameter_order=True), rows
            )
            return [_message(row) for row in result.all()]

    async def find_thread(self, user_id: UUID, heads: Sequence[str]) -> Conversation | None:
        """One query: the user's live conversations whose fingerprint is in `heads` (a
        handful: one per stored branch of this transcript), most recent first; of those, the
        one whose fingerprint comes first in `heads` (callers list the longest prefix first).
        The ranking is done here, not in SQL: it stays one plain, cacheable statement."""
        if not heads:
            return None
        query = (
            select(conversations)
            .where(
                conversations.c.user_id == user_id,
                conversations.c.fingerprint.in_(list(heads)),
                _live,
            )
            .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
            .limit(_THREAD_CANDIDATES)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return None
        rank = {head: i for i, head in enumerate(heads)}
        return _conversation(min(rows, key=lambda row: rank[row.fingerprint]))

    async def messages(self, conversation_id: UUID) -> list[Message]:
        query = (
            select(messages)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.seq)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in rows]

    async def chat_history(self, conversation_id: UUID) -> list[ChatMessage]:
        m = messages.c
        query = (
            select(m.role, m.content, m.content_parts, m.tool_calls, m.tool_call_id, m.name)
            .where(m.conversation_id == conversation_id)
            .order_by(m.seq)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ChatMessage(
                role=row.role,
                content=row.content,
                tool_calls=tuple(ToolCall.from_openai(c) for c in row.tool_calls or ()),
                tool_call_id=row.tool_call_id,
                name=row.name,
                parts=tuple(row.content_parts or ()),
            )
            for row in rows
        ]

    async def pending_approvals(self, conversation_id: UUID) -> list[PendingToolCall]:
        query = (
            select(tool_executions)
            .where(tool_executions.c.conversation_id == conversation_id, _pending_rows)
            .order_by(tool_executions.c.created_at, tool_executions.c.id)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_pending(row) for row in rows]

    async def count_pending_approvals(self) -> int:
        query = select(func.count()).select_from(tool_executions).where(_pending_rows)
        async with self._db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def add_pending_approvals(
        self,
        conversation_id: UUID,
        user_id: UUID,
        api_key_id: UUID | None,
        message_id: UUID | None,
        requests: Sequence[tuple[ToolCall, dict[str, Any], str]],
        now: datetime,
    ) -> list[PendingToolCall]:
        """`requests` are (call, parsed arguments, reason) triples. The model's ids, names and
        arguments are made storable as in `append`; the calls returned carry them as
        stored, so the ids a client is shown are the ids it can approve."""
        pending = [
            PendingToolCall(
                execution_id=uuid.uuid4(),
                tool_call_id=fit(call.id, _CALL_ID_LENGTH),
                name=fit(call.name, _NAME_LENGTH),
                arguments=storable(arguments),
                reason=storable(reason),
                requested_at=now,
            )
            for call, arguments, reason in requests
        ]
        rows = [
            {
                "id": p.execution_id,
                "user_id": user_id,
                "api_key_id": api_key_id,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "tool_call_id": p.tool_call_id,
                "tool_name": p.name,
                "arguments": p.arguments,
                "original_arguments": p.arguments,
                "status": "pending_approval",
                "requires_approval": True,
                "approval_reason": p.reason,
                "created_at": now,
            }
            for p in pending
        ]
        async with self._db.transaction() as conn:
            await conn.execute(insert(tool_executions), rows)
        return pending
