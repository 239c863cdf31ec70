"""The tool-execution record: a call starts running and ends exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_api.domain.tool_executions import (
    MAX_CALL_ID_LENGTH,
    MAX_NAME_LENGTH,
    ToolExecution,
    ToolExecutionStatus,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)


def started(**overrides: object) -> ToolExecution:
    values: dict[str, object] = {
        "user_id": uuid.uuid4(),
        "api_key_id": None,
        "conversation_id": None,
        "tool_call_id": "call_1",
        "tool_name": "calculator",
        "arguments": {"expression": "1"},
        "now": NOW,
    }
    values.update(overrides)
    return ToolExecution.start(**values)  # type: ignore[arg-type]


def test_a_started_call_is_running() -> None:
    execution = started()
    assert execution.status is ToolExecutionStatus.RUNNING
    assert not execution.ended
    assert execution.completed_at is None


def test_success_failure_timeout_and_cancellation_end_it() -> None:
    ok = started().succeed({"result": 1}, 12.6, LATER)
    assert (ok.status, ok.result, ok.duration_ms, ok.completed_at) == (
        ToolExecutionStatus.SUCCEEDED,
        {"result": 1},
        13,
        LATER,
    )
    failed = started().fail("TOOL_FAILED", "division by zero", 0.2, LATER, timed_out=False)
    assert (failed.status, failed.error_code, failed.error_message) == (
        ToolExecutionStatus.FAILED,
        "TOOL_FAILED",
        "division by zero",
    )
    timed_out = started().fail("TOOL_TIMEOUT", "too slow", 30_000, LATER, timed_out=True)
    assert timed_out.status is ToolExecutionStatus.TIMED_OUT
    cancelled = started().cancel(5, LATER)
    assert cancelled.status is ToolExecutionStatus.CANCELLED
    assert cancelled.error_code
    assert all(e.ended for e in (ok, failed, timed_out, cancelled))


def test_an_ended_call_cannot_end_again() -> None:
    ok = started().succeed(1, 1, LATER)
    with pytest.raises(ValueError, match="not running"):
        ok.fail("TOOL_FAILED", "late", 1, LATER, timed_out=False)


def test_oversized_names_and_ids_are_cut_to_the_columns() -> None:
    execution = started(tool_name="n" * 500, tool_call_id="c" * 500)
    assert len(execution.tool_name) == MAX_NAME_LENGTH
    assert len(execution.tool_call_id or "") == MAX_CALL_ID_LENGTH
