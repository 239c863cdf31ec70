"""Tool executions: the audit record of every tool call.

One row per call, whatever path it came by (`/v1/tools/execute`, `/v1/tools/batch`, the
agent): who asked, with which arguments, and how it ended. A call that needs a human decision
starts as `pending_approval` with its original arguments; the decision (who, when, approved
or not, why, edited arguments) is recorded on the same row, and an approved call then runs
from that row exactly once (`pending_approval` -> `running` -> an end status).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from agent_api.domain.errors import InvalidRequest

# Column widths of the `tool_executions` table: longer values (which only a misbehaving client
# or model sends) are cut, so that recording a call never fails because of them.
MAX_NAME_LENGTH = 100
MAX_CALL_ID_LENGTH = 100
# Control characters (NUL among them, which PostgreSQL cannot store) and lone surrogates
# (which no UTF-8 column can hold) have no place in a call id.
_BAD_CALL_ID_CHARACTER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def check_call_id(call_id: str) -> None:
    """Raises InvalidRequest (param `id`) for a tool call id that cannot be recorded as it is:
    longer than MAX_CALL_ID_LENGTH, or holding a control character."""
    if len(call_id) > MAX_CALL_ID_LENGTH:
        raise InvalidRequest(
            f"the tool call id must be at most {MAX_CALL_ID_LENGTH} characters", param="id"
        )
    if _BAD_CALL_ID_CHARACTER.search(call_id):
        raise InvalidRequest("the tool call id must not hold control characters", param="id")


class ToolExecutionStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


END_STATUSES = frozenset(
    {
        ToolExecutionStatus.SUCCEEDED,
        ToolExecutionStatus.FAILED,
        ToolExecutionStatus.TIMED_OUT,
        ToolExecutionStatus.REJECTED,
        ToolExecutionStatus.CANCELLED,
    }
)


class ApprovalDecision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ToolExecution:
    """One recorded tool call. `arguments` is the decoded object the tool ran with (the
    edited one after an approval with edits), or the raw text when the caller's JSON could
    not be decoded. Once ended, `result` is set on success and `error_code`/`error_message`
    otherwise."""

    id: UUID
    user_id: UUID
    tool_name: str
    status: ToolExecutionStatus
    created_at: datetime
    api_key_id: UUID | None = None
    conversation_id: UUID | None = None
    message_id: UUID | None = None
    tool_call_id: str | None = None
    arguments: Any = None
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    duration_ms: int | None = None
    completed_at: datetime | None = None
    # approval
    requires_approval: bool = False
    approval_reason: str | None = None
    original_arguments: Any = None
    edited_arguments: Any = None
    decision: ApprovalDecision | None = None
    decided_by: UUID | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None

    @classmethod
    def start(
        cls,
        *,
        user_id: UUID,
        api_key_id: UUID | None,
        conversation_id: UUID | None,
        tool_call_id: str,
        tool_name: str,
        arguments: Any,
        now: datetime,
    ) -> ToolExecution:
        """A call that runs now, without waiting for a decision."""
        return cls(
            id=uuid.uuid4(),
            user_id=user_id,
            api_key_id=api_key_id,
            conversation_id=conversation_id,
            tool_call_id=tool_call_id[:MAX_CALL_ID_LENGTH],
            tool_name=tool_name[:MAX_NAME_LENGTH],
            arguments=arguments,
            status=ToolExecutionStatus.RUNNING,
            created_at=now,
        )

    def succeed(self, result: Any, duration_ms: float, now: datetime) -> ToolExecution:
        """The record of a run that returned `result`. Raises ValueError unless running."""
        return self._end(ToolExecutionStatus.SUCCEEDED, duration_ms, now, result=result)

    def fail(
        self, code: str, message: str, duration_ms: float, now: datetime, *, timed_out: bool
    ) -> ToolExecution:
        """The record of a call that was refused or failed (`timed_out` when it ran out of
        time). Raises ValueError unless running."""
        status = ToolExecutionStatus.TIMED_OUT if timed_out else ToolExecutionStatus.FAILED
        return self._end(status, duration_ms, now, error_code=code, error_message=message)

    def cancel(self, duration_ms: float, now: datetime) -> ToolExecution:
        """The record of a run abandoned because its caller went away."""
        return self._end(
            ToolExecutionStatus.CANCELLED,
            duration_ms,
            now,
            error_code="CANCELLED",
            error_message="the caller went away before the tool finished",
        )

    def _end(
        self, status: ToolExecutionStatus, duration_ms: float, now: datetime, **outcome: Any
    ) -> ToolExecution:
        if self.status is not ToolExecutionStatus.RUNNING:
            raise ValueError(f"tool execution {self.id} is {self.status}, not running")
        return dataclasses.replace(
            self, status=status, duration_ms=round(duration_ms), completed_at=now, **outcome
        )

    @property
    def ended(self) -> bool:
        return self.status in END_STATUSES
