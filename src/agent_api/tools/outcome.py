"""`ToolOutcome`: how one tool call ended, as the executor answers it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_api.domain.errors import AppError
from agent_api.domain.tool_executions import ToolExecution

RECORDING_FAILED = "RECORDING_FAILED"  # a batch item whose audit row could not be written


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """How one call ended: `result` when `ok`, else `error_code` and `error_message`. An
    outcome answered by the executor for a failed call also carries its `error` (the
    AppError); outcomes made up elsewhere (step limits, recording failures) may not."""

    tool_call_id: str
    name: str
    ok: bool
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    duration_ms: int = 0
    error: AppError | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(
        cls, execution: ToolExecution, tool_call_id: str, name: str, error: AppError | None
    ) -> ToolOutcome:
        ok = execution.error_code is None
        return cls(
            tool_call_id=tool_call_id,
            name=name,
            ok=ok,
            result=execution.result if ok else None,
            error_code=execution.error_code,
            error_message=execution.error_message,
            duration_ms=execution.duration_ms or 0,
            error=error,
        )

    @classmethod
    def unrecorded(cls, tool_call_id: str, name: str) -> ToolOutcome:
        """A batch item whose audit row could not be written (code RECORDING_FAILED)."""
        return cls(
            tool_call_id=tool_call_id,
            name=name,
            ok=False,
            error_code=RECORDING_FAILED,
            error_message="the call could not be recorded: it did not run, or its end could "
            "not be saved",
        )

    def raise_for_error(self) -> None:
        """Raises the call's AppError when it carries one; does nothing otherwise."""
        if self.error is not None:
            raise self.error
