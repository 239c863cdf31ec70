"""SqlToolExecutionRepository on real PostgreSQL: the audit row round-trips, reads are scoped
to the owner, and an approved call is claimed by exactly one of concurrent claimants."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_api.domain.tool_executions import (
    ApprovalDecision,
    ToolExecution,
    ToolExecutionStatus,
)
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import conversations, tool_executions, users
from agent_api.infrastructure.db.tool_executions import SqlToolExecutionRepository

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def add_user(db: Database) -> UUID:
    user_id = uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(
            insert(users).values(
                id=user_id,
                email=f"{user_id}@example.com",
                password_hash="x",
                name="Ada",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    return user_id


async def add_conversation(db: Database, user_id: UUID) -> UUID:
    conversation_id = uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(
            insert(conversations).values(
                id=conversation_id, user_id=user_id, model="demo", created_at=NOW, updated_at=NOW
            )
        )
    return conversation_id


def finished(user_id: UUID, *, at: datetime = NOW, **overrides: object) -> ToolExecution:
    execution = ToolExecution.start(
        user_id=user_id,
        api_key_id=None,
        conversation_id=None,
        tool_call_id="call_1",
        tool_name="calculator",
        arguments={"expression": "6*7 ≠ π"},
        now=at,
    )
    execution = dataclasses.replace(execution, **overrides)  # type: ignore[arg-type]
    return execution.succeed({"expression": "6*7", "result": 42}, 1.4, at + timedelta(seconds=1))


def pending(user_id: UUID, decision: ApprovalDecision | None) -> ToolExecution:
    return ToolExecution(
        id=uuid.uuid4(),
        user_id=user_id,
        tool_name="calculator",
        tool_call_id="call_7",
        status=ToolExecutionStatus.PENDING_APPROVAL,
        created_at=NOW,
        arguments={"expression": "1+1"},
        original_arguments={"expression": "1+1"},
        requires_approval=True,
        approval_reason="configured",
        decision=decision,
        decided_by=user_id if decision else None,
        decided_at=NOW if decision else None,
    )


async def test_round_trip_and_owner_scope(db: Database) -> None:
    repo = SqlToolExecutionRepository(db)
    owner, stranger = await add_user(db), await add_user(db)
    execution = finished(owner)
    await repo.add(execution)
    assert await repo.get(execution.id, owner) == execution
    assert await repo.get(execution.id, stranger) is None


async def test_failures_keep_raw_arguments_and_absent_json_is_sql_null(db: Database) -> None:
    repo = SqlToolExecutionRepository(db)
    owner = await add_user(db)
    execution = ToolExecution.start(
        user_id=owner,
        api_key_id=None,
        conversation_id=None,
        tool_call_id="c" * 300,
        tool_name="n" * 300,
        arguments='{"broken": ',
        now=NOW,
    ).fail("INVALID_ARGUMENTS", "arguments are not valid JSON", 0.1, NOW, timed_out=False)
    await repo.add(execution)
    stored = await repo.get(execution.id, owner)
    assert stored is not None
    assert stored.arguments == '{"broken": '
    assert (stored.error_code, stored.status) == ("INVALID_ARGUMENTS", ToolExecutionStatus.FAILED)
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(
                    tool_executions.c.result.is_(None),
                    tool_executions.c.original_arguments.is_(None),
                ).where(tool_executions.c.id == execution.id)
            )
        ).one()
    assert tuple(row) == (True, True)


async def test_list_is_newest_first_per_user_and_conversation(db: Database) -> None:
    repo = SqlToolExecutionRepository(db)
    owner, stranger = await add_user(db), await add_user(db)
    conversation = await add_conversation(db, owner)
    first = finished(owner, at=NOW)
    second = finished(owner, at=NOW + timedelta(minutes=1), conversation_id=conversation)
    await repo.add(first)
    await repo.add(second)
    await repo.add(finished(stranger))
    assert [e.id for e in await repo.list_for_user(owner)] == [second.id, first.id]
    assert [e.id for e in await repo.list_for_user(owner, conversation_id=conversation)] == [
        second.id
    ]
    assert len(await repo.list_for_user(owner, limit=1)) == 1


async def test_claim_only_approved_pending_rows_then_finish(db: Database) -> None:
    repo = SqlToolExecutionRepository(db)
    owner, stranger = await add_user(db), await add_user(db)
    undecided = pending(owner, None)
    rejected = pending(owner, ApprovalDecision.REJECTED)
    approved = pending(owner, ApprovalDecision.APPROVED)
    for row in (undecided, rejected, approved):
        await repo.add(row)
    assert await repo.claim_approved(undecided.id, owner) is None
    assert await repo.claim_approved(rejected.id, owner) is None
    assert await repo.claim_approved(approved.id, stranger) is None
    claimed = await repo.claim_approved(approved.id, owner)
    assert claimed is not None
    assert claimed.status is ToolExecutionStatus.RUNNING
    assert claimed.original_arguments == {"expression": "1+1"}
    assert await repo.claim_approved(approved.id, owner) is None
    await repo.finish(claimed.succeed({"result": 2}, 3, NOW))
    stored = await repo.get(approved.id, owner)
    assert stored is not None
    assert (stored.status, stored.result, stored.duration_ms) == (
        ToolExecutionStatus.SUCCEEDED,
        {"result": 2},
        3,
    )
    assert stored.decision is ApprovalDecision.APPROVED
    assert stored.requires_approval


async def test_concurrent_claims_have_exactly_one_winner(pg_engine: AsyncEngine) -> None:
    # Separate connections (not the rolled-back test connection), so the claims really race.
    db = Database(pg_engine)
    repo = SqlToolExecutionRepository(db)
    owner = await add_user(db)
    try:
        approved = pending(owner, ApprovalDecision.APPROVED)
        await repo.add(approved)
        claims = await asyncio.gather(*(repo.claim_approved(approved.id, owner) for _ in range(8)))
        assert sum(claim is not None for claim in claims) == 1
    finally:
        async with db.transaction() as conn:
            await conn.execute(delete(users).where(users.c.id == owner))
