"""SqlToolExecutionRepository: the `tool_executions` audit table.

A refused call is one INSERT of its failed record; a call that runs is one INSERT of its
`running` record before the tool runs and one UPDATE of its end after. An approved call is
claimed with one conditional UPDATE (`pending_approval` + `approved` -> `running`, so exactly
one claimant wins on PostgreSQL and SQLite alike) and finished with another.

Whatever a tool or a caller produced is made storable before it is written: NUL characters
(which PostgreSQL refuses in text and JSONB) and lone surrogates (which UTF-8 cannot encode)
become U+FFFD, so recording a call never fails because of its content.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import insert, null, select, update

from agent_api.domain.text import storable
from agent_api.domain.tool_executions import (
    ApprovalDecision,
    ToolExecution,
    ToolExecutionStatus,
)
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.schema import tool_executions

_t = tool_executions.c


def tool_execution_from_row(row: Any) -> ToolExecution:
    return ToolExecution(
        id=row.id,
        user_id=row.user_id,
        api_key_id=row.api_key_id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        tool_call_id=row.tool_call_id,
        tool_name=row.tool_name,
        arguments=row.arguments,
        result=row.result,
        error_code=row.error_code,
        error_message=row.error_message,
        status=ToolExecutionStatus(row.status),
        duration_ms=row.duration_ms,
        requires_approval=row.requires_approval,
        approval_reason=row.approval_reason,
        original_arguments=row.original_arguments,
        edited_arguments=row.edited_arguments,
        decision=ApprovalDecision(row.decision) if row.decision else None,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


def _json(value: Any) -> Any:
    # SQL NULL for "absent": the JSON type would otherwise store the JSON value `null`.
    return null() if value is None else storable(value)


def _values(execution: ToolExecution) -> dict[str, Any]:
    e = execution
    return {
        "id": e.id,
        "user_id": e.user_id,
        "api_key_id": e.api_key_id,
        "conversation_id": e.conversation_id,
        "message_id": e.message_id,
        "tool_call_id": storable(e.tool_call_id),
        "tool_name": storable(e.tool_name),
        "arguments": _json(e.arguments),
        "result": _json(e.result),
        "error_code": e.error_code,
        "error_message": storable(e.error_message),
        "status": e.status.value,
        "duration_ms": e.duration_ms,
        "requires_approval": e.requires_approval,
        "approval_reason": storable(e.approval_reason),
        "original_arguments": _json(e.original_arguments),
        "edited_arguments": _json(e.edited_arguments),
        "decision": e.decision.value if e.decision else None,
        "decided_by": e.decided_by,
        "decided_at": e.decided_at,
        "decision_reason": storable(e.decision_reason),
        "created_at": e.created_at,
        "completed_at": e.completed_at,
    }


class SqlToolExecutionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, execution: ToolExecution) -> None:
        """One INSERT. Raises ServiceUnavailable when the database is down."""
        async with self._db.transaction() as conn:
            await conn.execute(insert(tool_executions).values(**_values(execution)))

    async def claim_approved(self, execution_id: UUID, user_id: UUID) -> ToolExecution | None:
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(tool_executions)
                    .where(
                        _t.id == execution_id,
                        _t.user_id == user_id,
                        _t.status == ToolExecutionStatus.PENDING_APPROVAL.value,
                        _t.decision == ApprovalDecision.APPROVED.value,
                    )
                    .values(status=ToolExecutionStatus.RUNNING.value)
                    .returning(*tool_executions.c)
                )
            ).first()
        return tool_execution_from_row(row) if row else None

    async def finish(self, execution: ToolExecution) -> None:
        e = execution
        async with self._db.transaction() as conn:
            await conn.execute(
                update(tool_executions)
                .where(_t.id == e.id, _t.status == ToolExecutionStatus.RUNNING.value)
                .values(
                    status=e.status.value,
                    result=_json(e.result),
                    error_code=e.error_code,
                    error_message=storable(e.error_message),
                    duration_ms=e.duration_ms,
                    completed_at=e.completed_at,
                )
            )

    async def get(self, execution_id: UUID, user_id: UUID) -> ToolExecution | None:
        query = select(tool_executions).where(_t.id == execution_id, _t.user_id == user_id)
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return tool_execution_from_row(row) if row else None

    async def list_for_user(
        self, user_id: UUID, *, conversation_id: UUID | None = None, limit: int = 50
    ) -> list[ToolExecution]:
        query = select(tool_executions).where(_t.user_id == user_id)
        if conversation_id is not None:
            query = query.where(_t.conversation_id == conversation_id)
        query = query.order_by(_t.created_at.desc(), _t.id.desc()).limit(limit)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [tool_execution_from_row(row) for row in rows]
