"""SqlConversationRepository on real PostgreSQL: scoping, counters, the run lease and the
exactly-once guarantees of claims and approvals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_api.domain.chat import ToolCall, Usage
from agent_api.domain.conversations import (
    AgentType,
    ApprovalRequest,
    Conversation,
    ConversationStatus,
    NewMessage,
)
from agent_api.domain.errors import InvalidRequest
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db.conversations import SqlConversationRepository
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import llm_usage, tool_executions, users
from agent_api.infrastructure.db.tool_executions import SqlToolExecutionRepository
from agent_api.infrastructure.db.users import SqlUserRepository

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def make_user(db: Database) -> User:
    user = User(uuid.uuid4(), f"{uuid.uuid4().hex}@x.io", "U", Role.USER, True, "h", NOW, NOW)
    await SqlUserRepository(db).add(user)
    return user


def conversation(
    user: User, status: ConversationStatus = ConversationStatus.ACTIVE
) -> Conversation:
    return Conversation(
        id=uuid.uuid4(),
        user_id=user.id,
        title="t",
        status=status,
        agent_type=AgentType.AUTO,
        model="demo",
        created_at=NOW,
        updated_at=NOW,
    )


async def test_get_is_scoped_to_the_owner_and_hides_deleted(db: Database) -> None:
    repo = SqlConversationRepository(db)
    alice, bob = await make_user(db), await make_user(db)
    conv = conversation(alice)
    await repo.create(conv)
    assert (await repo.get(conv.id, alice.id)) is not None
    assert await repo.get(conv.id, bob.id) is None
    assert not await repo.delete(conv.id, bob.id, NOW)
    assert await repo.delete(conv.id, alice.id, NOW)
    assert await repo.get(conv.id, alice.id) is None


async def test_messages_get_sequence_numbers_and_update_counters(db: Database) -> None:
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    conv = conversation(user)
    await repo.create(conv)
    await repo.append(NewMessage(conv.id, "user", NOW, content="hi"))
    call = ToolCall("c1", "calculator", '{"expression": "1+1"}')
    await repo.append(NewMessage(conv.id, "assistant", NOW, tool_calls=(call,), usage=Usage(7, 3)))
    await repo.append(
        NewMessage(conv.id, "tool", NOW, content="2", tool_call_id="c1", name="calculator")
    )
    stored = await repo.messages(conv.id)
    assert [(m.seq, m.role) for m in stored] == [(1, "user"), (2, "assistant"), (3, "tool")]
    assert stored[1].tool_calls == (call,)
    after = await repo.get(conv.id, user.id)
    assert after is not None
    assert (after.message_count, after.tool_call_count, after.total_tokens) == (3, 1, 10)


async def test_an_answer_keeps_how_much_context_it_was_written_without(db: Database) -> None:
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    conv = conversation(user)
    await repo.create(conv)
    await repo.append(NewMessage(conv.id, "user", NOW, content="hi"))
    written = await repo.append(
        NewMessage(conv.id, "assistant", NOW, content="ok", usage=Usage(7, 3), context_dropped=12)
    )
    assert written.context_dropped == 12
    stored = await repo.messages(conv.id)
    assert [m.context_dropped for m in stored] == [0, 12]


async def test_content_parts_and_long_text_are_stored_and_read_back(db: Database) -> None:
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    conv = conversation(user)
    await repo.create(conv)
    parts = (
        {"type": "text", "text": "what is this? é"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw==", "detail": "low"},
        },
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    )
    written = await repo.append(
        NewMessage(conv.id, "user", NOW, content="what is this? é", parts=parts)
    )
    long = "x" * 150_000
    await repo.append(NewMessage(conv.id, "user", NOW, content=long))
    first, second = await repo.messages(conv.id)
    assert written.parts == first.parts == parts
    assert first.to_chat().parts == parts
    assert (second.content, second.parts) == (long, ())


async def test_list_pages_newest_first_with_a_keyset_cursor(db: Database) -> None:
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    made = []
    for i in range(5):
        conv = replace(conversation(user), updated_at=NOW + timedelta(minutes=i))
        await repo.create(conv)
        made.append(conv)
    first = await repo.list_for_user(user.id, limit=2)
    assert [c.id for c in first] == [made[4].id, made[3].id]
    rest = await repo.list_for_user(user.id, limit=10, before=(first[-1].updated_at, first[-1].id))
    assert [c.id for c in rest] == [made[2].id, made[1].id, made[0].id]


@pytest.fixture
async def real_db(pg_engine: AsyncEngine) -> AsyncIterator[Database]:
    """A Database with real, separate transactions (for concurrency), cleaned up after."""
    yield Database(pg_engine)
    async with pg_engine.begin() as conn:
        await conn.execute(delete(users).where(users.c.email.like("%@x.io")))


async def test_concurrent_claims_have_exactly_one_winner(real_db: Database) -> None:
    repo = SqlConversationRepository(real_db)
    user = await make_user(real_db)
    conv = conversation(user)
    await repo.create(conv)
    results = await asyncio.gather(
        *(repo.claim_run(conv.id, user.id, uuid.uuid4(), NOW, LEASE) for _ in range(20))
    )
    assert sum(r is not None for r in results) == 1


async def test_a_conversation_awaiting_tools_is_claimed_only_for_their_results(
    real_db: Database,
) -> None:
    repo = SqlConversationRepository(real_db)
    user, other = await make_user(real_db), await make_user(real_db)
    parked = conversation(user, ConversationStatus.AWAITING_TOOLS)
    idle = conversation(user)
    await repo.create(parked)
    await repo.create(idle)
    assert await repo.claim_run(parked.id, user.id, uuid.uuid4(), NOW, LEASE) is None
    assert (
        await repo.claim_run(idle.id, user.id, uuid.uuid4(), NOW, LEASE, awaiting_tools=True)
        is None
    )
    foreign = await repo.claim_run(
        parked.id, other.id, uuid.uuid4(), NOW, LEASE, awaiting_tools=True
    )
    assert foreign is None
    results = await asyncio.gather(
        *(
            repo.claim_run(parked.id, user.id, uuid.uuid4(), NOW, LEASE, awaiting_tools=True)
            for _ in range(10)
        )
    )
    (winner,) = [r for r in results if r is not None]
    assert winner.status is ConversationStatus.RUNNING


async def test_an_expired_lease_can_be_taken_over_and_swept(real_db: Database) -> None:
    repo = SqlConversationRepository(real_db)
    user = await make_user(real_db)
    conv = conversation(user)
    await repo.create(conv)
    first = uuid.uuid4()
    assert await repo.claim_run(conv.id, user.id, first, NOW, LEASE)
    assert (
        await repo.claim_run(conv.id, user.id, uuid.uuid4(), NOW + timedelta(seconds=30), LEASE)
        is None
    )
    later = NOW + timedelta(seconds=61)
    assert await repo.fail_expired_runs(later) >= 1
    swept = await repo.get(conv.id, user.id)
    assert swept is not None
    assert swept.status is ConversationStatus.FAILED
    assert await repo.finish_run(conv.id, first, ConversationStatus.ACTIVE, later) is None
    assert await repo.claim_run(conv.id, user.id, uuid.uuid4(), later, LEASE)


async def test_concurrent_approvals_have_one_winner_and_the_call_starts_once(
    real_db: Database,
) -> None:
    repo = SqlConversationRepository(real_db)
    user = await make_user(real_db)
    conv = conversation(user, ConversationStatus.PENDING_APPROVAL)
    await repo.create(conv)
    call = ToolCall("c1", "delete_file", '{"path": "x"}')
    (pending,) = await repo.add_pending_approvals(
        conv.id, user.id, None, None, [(call, {"path": "x"}, "needs approval")], NOW
    )
    assert [p.tool_call_id for p in await repo.pending_approvals(conv.id)] == ["c1"]
    request = ApprovalRequest(approved=True, arguments={"c1": {"path": "y"}})
    decided = request.decide(await repo.pending_approvals(conv.id))
    results = await asyncio.gather(
        *(
            repo.apply_decision(conv.id, user.id, uuid.uuid4(), decided, NOW, LEASE)
            for _ in range(20)
        )
    )
    winners = [r for r in results if r]
    assert len(winners) == 1
    assert decided[0].effective_arguments == {"path": "y"}
    assert await repo.pending_approvals(conv.id) == []
    executions = SqlToolExecutionRepository(real_db)
    claims = await asyncio.gather(
        *(executions.claim_approved(pending.execution_id, user.id) for _ in range(10))
    )
    assert sum(c is not None for c in claims) == 1
    async with real_db.connect() as conn:
        row = (
            await conn.execute(
                select(tool_executions).where(tool_executions.c.id == pending.execution_id)
            )
        ).one()
    assert (row.decision, row.decided_by, row.original_arguments, row.edited_arguments) == (
        "approved",
        user.id,
        {"path": "x"},
        {"path": "y"},
    )


async def test_a_bad_decision_changes_nothing(real_db: Database) -> None:
    repo = SqlConversationRepository(real_db)
    user = await make_user(real_db)
    conv = conversation(user, ConversationStatus.PENDING_APPROVAL)
    await repo.create(conv)
    await repo.add_pending_approvals(
        conv.id, user.id, None, None, [(ToolCall("c1", "t", "{}"), {}, "r")], NOW
    )
    with pytest.raises(InvalidRequest):
        ApprovalRequest(True, tool_call_ids=("nope",)).decide(await repo.pending_approvals(conv.id))
    still = await repo.get(conv.id, user.id)
    assert still is not None
    assert still.status is ConversationStatus.PENDING_APPROVAL
    assert len(await repo.pending_approvals(conv.id)) == 1


async def test_an_answer_and_its_usage_are_stored_together(db: Database) -> None:
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    conv = conversation(user)
    await repo.create(conv)
    answer = NewMessage(conv.id, "assistant", NOW, content="ok", model="m", usage=Usage(7, 3))
    await repo.append_answer(answer, user.id, None)
    missing = replace(answer, conversation_id=uuid.uuid4())
    with pytest.raises(Exception):  # noqa: B017, PT011 (whatever the store raises)
        await repo.append_answer(missing, user.id, None)
    async with db.connect() as conn:
        rows = (await conn.execute(select(llm_usage).where(llm_usage.c.user_id == user.id))).all()
    assert [(r.conversation_id, r.model, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        (conv.id, "m", 7, 3)
    ]
    assert [m.content for m in await repo.messages(conv.id)] == ["ok"]
