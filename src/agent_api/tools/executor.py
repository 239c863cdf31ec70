"""The tool executor: the one way a tool call is run, whoever asks (`/v1/tools/execute`,
`/v1/tools/batch`, the agent).

Every call is checked completely before anything runs, in this order: the call id must be
recordable (InvalidRequest naming `id`), the tool must exist (ToolNotFound), the credential
must allow it (ToolForbidden), the arguments must decode to an object (InvalidArguments) whose
text PostgreSQL can store and that passes the tool's schema (InvalidArguments naming the
field), and, outside an approved agent call, the tool must not need a human decision
(ToolNeedsApproval). A refused call is recorded with one INSERT of its failed row.

A call that passed is recorded as `running` BEFORE its tool runs, then finished with an
UPDATE: a call whose row cannot be written never runs, and a row left `running` marks a call
that started and never finished. The tool runs under the per-call timeout (ToolTimeout); its
failures are ToolFailed, and anything else it raises is logged and answered as ToolFailed
without internals. Every call is counted in the `tool_executions` metric.

Every form answers one `ToolOutcome`, which carries the call's AppError when it failed:
`execute` (the endpoint of one call) raises it with `outcome.raise_for_error()`; `run` (the
agent) returns the outcome either way and raises only when the recording fails
(ServiceUnavailable) or on cancellation; `run_many` (batches) isolates its items: an item whose
recording fails answers an outcome with code RECORDING_FAILED and its siblings go on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol
from uuid import UUID

import structlog

from agent_api.domain.chat import ToolCall, ToolSpec
from agent_api.domain.clock import Clock, utcnow
from agent_api.domain.conversations import DecidedToolCall
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import (
    AppError,
    ServiceUnavailable,
    ToolNeedsApproval,
    ToolTimeout,
)
from agent_api.domain.tool_executions import ToolExecution, check_call_id
from agent_api.tools.arguments import check_storable, parse_arguments, recordable
from agent_api.tools.base import Tool, ToolContext, run_tool
from agent_api.tools.outcome import ToolOutcome
from agent_api.tools.registry import ToolRegistry

log = structlog.get_logger("agent_api.tools")

OnFinished = Callable[[str, str], None]  # (tool name or "unknown", final status)


class ToolExecutionRepository(Protocol):
    """The audit table of tool calls (`tool_executions`)."""

    async def add(self, execution: ToolExecution) -> None:
        """Records a call (one INSERT)."""

    async def claim_approved(self, execution_id: UUID, user_id: UUID) -> ToolExecution | None:
        """Moves `user_id`'s approved `pending_approval` execution to `running` and returns
        it; None when it is not one (already claimed, rejected, undecided, someone else's):
        an approved call runs once."""

    async def finish(self, execution: ToolExecution) -> None:
        """Writes the end (status, result or error, duration) of a claimed execution."""

    async def get(self, execution_id: UUID, user_id: UUID) -> ToolExecution | None:
        """The execution when it belongs to `user_id`."""

    async def list_for_user(
        self, user_id: UUID, *, conversation_id: UUID | None = None, limit: int = 50
    ) -> list[ToolExecution]:
        """The user's executions, newest first."""


class ToolExecutor:
    def __init__(
        self,
        registry: ToolRegistry,
        executions: ToolExecutionRepository,
        *,
        timeout_seconds: float,
        max_concurrent: int,
        on_finished: OnFinished | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.registry = registry
        self._executions = executions
        self._timeout = timeout_seconds
        self._max_concurrent = max_concurrent
        self._on_finished = on_finished
        self._now = clock

    # --- what a credential may use ------------------------------------------------------

    def specs_for(self, principal: Principal) -> tuple[ToolSpec, ...]:
        """The tools `principal`'s credential may use (those offered to the model and listed
        by `/v1/tools`), sorted by name."""
        credential = principal.credential
        return tuple(self.registry.specs(credential.usable_tools(self.registry.names)))

    def approval_reason(self, name: str) -> str | None:
        """Why a call of `name` needs a human decision; None when it does not."""
        return self.registry.approval_reason(name)

    def check(self, principal: Principal, call: ToolCall) -> dict[str, Any]:
        """The call's decoded, schema-valid arguments, whether or not the tool needs approval
        (the agent checks a call before asking for the decision). Raises InvalidRequest,
        ToolNotFound, ToolForbidden, InvalidArguments. Records nothing."""
        return self._prepare(principal, call.id, call.name, call.arguments, decided=True)[1]

    # --- running --------------------------------------------------------------------------

    async def execute(
        self, principal: Principal, call: ToolCall, conversation_id: UUID | None = None
    ) -> ToolOutcome:
        """Runs and records one call. Raises its AppError when it did not succeed
        (ToolNeedsApproval for a tool that waits for a human decision)."""
        outcome = await self._run(principal, call, conversation_id)
        outcome.raise_for_error()
        return outcome

    async def run(
        self, principal: Principal, call: ToolCall, conversation_id: UUID | None = None
    ) -> ToolOutcome:
        """Runs and records one call; its failure is the outcome, never an exception. A tool
        that needs approval is refused (ToolNeedsApproval): approved calls go through
        `run_approved`. Raises ServiceUnavailable when the call cannot be recorded (then it
        did not run)."""
        return await self._run(principal, call, conversation_id)

    async def run_many(
        self, principal: Principal, calls: Sequence[ToolCall], conversation_id: UUID | None = None
    ) -> list[ToolOutcome]:
        """Outcomes in the order of `calls`, one per call whatever happens to the others. At
        most TOOLS_MAX_CONCURRENT of these calls run at once. An item that cannot be recorded
        answers an outcome with code RECORDING_FAILED (it did not run, or its end was not
        written); the other items are not affected."""
        slots = asyncio.Semaphore(self._max_concurrent)

        async def one(call: ToolCall) -> ToolOutcome:
            async with slots:
                try:
                    return await self.run(principal, call, conversation_id)
                except Exception as exc:
                    reason = exc.message if isinstance(exc, ServiceUnavailable) else None
                    log.error(
                        "could not record a tool call",
                        tool_call_id=call.id,
                        error=reason or type(exc).__name__,
                    )
                    return ToolOutcome.unrecorded(call.id, call.name)

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def run_approved(
        self, principal: Principal, decided: DecidedToolCall, conversation_id: UUID
    ) -> ToolOutcome | None:
        """Runs an approved call from its `pending_approval` record with the effective
        (possibly edited) arguments, exactly once: None when it was already claimed. The
        approver's credential must allow the tool."""
        pending = decided.pending
        claimed = await self._executions.claim_approved(pending.execution_id, principal.user.id)
        if claimed is None:
            return None
        ctx = ToolContext(
            principal.user.id, principal.api_key_id, pending.tool_call_id, conversation_id
        )
        started = time.perf_counter()
        try:
            tool, args = self._prepare(
                principal, None, pending.name, decided.effective_arguments, decided=True
            )
        except AppError as exc:
            refused = self._failed(claimed, exc, _since(started))
            await self._executions.finish(refused)
            return self._outcome(refused, pending.tool_call_id, pending.name, exc)
        # The claim already wrote the `running` row: the tool may run.
        return await self._run_started(tool, claimed, args, ctx, started)

    # --- internals ------------------------------------------------------------------------

    async def _run(
        self, principal: Principal, call: ToolCall, conversation_id: UUID | None
    ) -> ToolOutcome:
        call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
        execution = ToolExecution.start(
            user_id=principal.user.id,
            api_key_id=principal.api_key_id,
            conversation_id=conversation_id,
            tool_call_id=call_id,
            tool_name=call.name,
            arguments=None,
            now=self._now(),
        )
        started = time.perf_counter()
        try:
            tool, args = self._prepare(principal, call.id, call.name, call.arguments, decided=False)
        except AppError as exc:
            execution = replace(execution, arguments=recordable(call.arguments))
            refused = self._failed(execution, exc, _since(started))
            await self._executions.add(refused)
            return self._outcome(refused, call_id, call.name, exc)
        execution = replace(execution, arguments=args)
        # Written before the tool runs: a call that cannot be recorded never runs.
        await self._executions.add(execution)
        ctx = ToolContext(principal.user.id, principal.api_key_id, call_id, conversation_id)
        return await self._run_started(tool, execution, args, ctx, started)

    async def _run_started(
        self,
        tool: Tool,
        execution: ToolExecution,
        args: dict[str, Any],
        ctx: ToolContext,
        started: float,
    ) -> ToolOutcome:
        """Runs the tool of a call whose `running` row is written, then writes its end (one
        UPDATE). The outcome is named after `ctx.tool_call_id` and `tool.name`."""
        error: AppError | None = None
        try:
            result = await run_tool(tool, args, ctx, self._timeout)
        except AppError as exc:
            finished = self._failed(execution, exc, _since(started))
            error = exc
        except asyncio.CancelledError:
            await self._save_abandoned(execution.cancel(_since(started), self._now()))
            raise
        else:
            finished = execution.succeed(result, _since(started), self._now())
        await self._executions.finish(finished)
        return self._outcome(finished, ctx.tool_call_id, tool.name, error)

    def _prepare(
        self,
        principal: Principal,
        call_id: str | None,
        name: str,
        raw_arguments: Any,
        *,
        decided: bool,
    ) -> tuple[Tool, dict[str, Any]]:
        """The whole check of a call, before anything runs. `decided`: a human approved it
        (or is about to be asked), so a tool that needs approval may go on."""
        if call_id:
            check_call_id(call_id)
        tool = self.registry.require(name)
        principal.credential.require_tool(name)
        args = parse_arguments(raw_arguments)
        check_storable(args)
        self.registry.validate(name, args)
        if not decided and self.registry.needs_approval(name):
            raise ToolNeedsApproval(
                f"the tool '{name}' needs a human approval: it runs only when the agent "
                "calls it in a conversation and the call is approved"
            )
        return tool, args

    def _failed(
        self, execution: ToolExecution, error: AppError, duration_ms: float
    ) -> ToolExecution:
        timed_out = isinstance(error, ToolTimeout)
        return execution.fail(
            error.code, error.message, duration_ms, self._now(), timed_out=timed_out
        )

    def _outcome(
        self, execution: ToolExecution, call_id: str, name: str, error: AppError | None
    ) -> ToolOutcome:
        """The outcome of an ended call, counted in the metric and logged when it failed."""
        label = name if self.registry.get(name) is not None else "unknown"
        if self._on_finished is not None:
            self._on_finished(label, execution.status.value)
        if error is not None:
            log.info("tool call failed", tool=label, tool_call_id=call_id, code=error.code)
        return ToolOutcome.of(execution, call_id, name, error)

    async def _save_abandoned(self, execution: ToolExecution) -> None:
        """Best effort: a cancelled call still ends its audit row, without delaying the
        cancellation when the database fails."""
        try:
            await asyncio.shield(self._executions.finish(execution))
        except Exception:
            log.warning("could not record a cancelled tool call", tool=execution.tool_name)


def _since(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return (time.perf_counter() - started) * 1000
