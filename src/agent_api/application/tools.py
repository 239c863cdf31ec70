"""The tool executor: the one way a tool call is run, whoever asks (`/v1/tools/execute`,
`/v1/tools/batch`, the agent).

For every call, in this order: the tool must exist (ToolNotFound), the credential must allow
it (ToolForbidden), the arguments must decode to an object (InvalidArguments) that passes the
tool's schema (InvalidArguments naming the field); then the tool runs under the per-call
timeout (ToolTimeout). Tool failures are ToolFailed; anything else a tool raises is logged and
answered as ToolFailed without internals. Every call, refused or run, is recorded in
`tool_executions` with one write and counted in the `tool_executions` metric.

Two forms: `execute` raises the call's AppError (for the HTTP endpoint of one call); `run` and
`run_many` return a `ToolOutcome` either way (for batches and the agent). Neither swallows an
infrastructure failure of the recording itself (ServiceUnavailable) or a cancellation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog

from agent_api.application.ports import ToolExecutionRepository
from agent_api.domain.chat import ToolCall, ToolSpec
from agent_api.domain.conversations import DecidedToolCall
from agent_api.domain.credentials import Credential, Principal
from agent_api.domain.errors import AppError, InvalidArguments, ToolTimeout
from agent_api.domain.tool_executions import ToolExecution
from agent_api.tools.arguments import parse_arguments
from agent_api.tools.base import Tool, ToolContext, run_tool
from agent_api.tools.registry import ToolRegistry

log = structlog.get_logger("agent_api.tools")

Clock = Callable[[], datetime]
OnFinished = Callable[[str, str], None]  # (tool name or "unknown", final status)
MAX_RECORDED_RAW_ARGUMENTS = 10_000  # characters of undecodable arguments kept for the audit


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """How one call ended: `result` when `ok`, else `error_code` and `error_message`."""

    tool_call_id: str
    name: str
    ok: bool
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    duration_ms: int = 0

    @classmethod
    def of(cls, execution: ToolExecution, tool_call_id: str, name: str) -> ToolOutcome:
        ok = execution.error_code is None
        return cls(
            tool_call_id=tool_call_id,
            name=name,
            ok=ok,
            result=execution.result if ok else None,
            error_code=execution.error_code,
            error_message=execution.error_message,
            duration_ms=execution.duration_ms or 0,
        )


def _recordable(raw: Any) -> Any:
    """The arguments as the audit keeps them: decoded when possible, else the raw text."""
    try:
        return parse_arguments(raw)
    except InvalidArguments:
        return raw[:MAX_RECORDED_RAW_ARGUMENTS] if isinstance(raw, str) else repr(raw)[:200]


class ToolExecutor:
    def __init__(
        self,
        registry: ToolRegistry,
        executions: ToolExecutionRepository,
        *,
        timeout_seconds: float,
        max_concurrent: int,
        on_finished: OnFinished | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self.registry = registry
        self._executions = executions
        self._timeout = timeout_seconds
        self._max_concurrent = max_concurrent
        self._on_finished = on_finished
        self._now = clock

    # --- what a credential may use ------------------------------------------------------

    def definitions_for(self, credential: Credential) -> list[dict[str, Any]]:
        """OpenAI tool definitions (with `requires_approval`) of the tools `credential` may
        use, sorted by name."""
        return self.registry.definitions(credential.usable_tools(self.registry.names))

    def specs_for(self, principal: Principal) -> tuple[ToolSpec, ...]:
        """The tools to offer the model on behalf of `principal`, sorted by name."""
        return tuple(
            ToolSpec(
                d["function"]["name"], d["function"]["description"], d["function"]["parameters"]
            )
            for d in self.definitions_for(principal.credential)
        )

    def approval_reason(self, name: str) -> str | None:
        """Why a call of `name` needs a human decision; None when it does not."""
        return self.registry.approval_reason(name)

    def check(self, principal: Principal, call: ToolCall) -> dict[str, Any]:
        """The call's decoded, schema-valid arguments. Raises ToolNotFound, ToolForbidden,
        InvalidArguments. Records nothing."""
        return self._prepare(principal, call.name, call.arguments)[1]

    # --- running --------------------------------------------------------------------------

    async def execute(
        self, principal: Principal, call: ToolCall, conversation_id: UUID | None = None
    ) -> ToolOutcome:
        """Runs and records one call. Raises its AppError when it did not succeed."""
        outcome, error = await self._run_recorded(principal, call, conversation_id)
        if error is not None:
            raise error
        return outcome

    async def run(
        self, principal: Principal, call: ToolCall, conversation_id: UUID | None = None
    ) -> ToolOutcome:
        """Runs and records one call; its failure is the outcome, never an exception."""
        outcome, _ = await self._run_recorded(principal, call, conversation_id)
        return outcome

    async def run_many(
        self, principal: Principal, calls: Sequence[ToolCall], conversation_id: UUID | None = None
    ) -> list[ToolOutcome]:
        """Outcomes in the order of `calls`. At most TOOLS_MAX_CONCURRENT of these calls run
        at once; if one raises (an infrastructure failure), the others are cancelled."""
        slots = asyncio.Semaphore(self._max_concurrent)

        async def one(call: ToolCall) -> ToolOutcome:
            async with slots:
                return await self.run(principal, call, conversation_id)

        tasks = [asyncio.ensure_future(one(call)) for call in calls]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

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
        finished, error = await self._attempt(
            principal,
            claimed,
            pending.name,
            decided.effective_arguments,
            ctx,
            self._executions.finish,
        )
        return self._finish(finished, pending.tool_call_id, pending.name, error)[0]

    # --- internals ------------------------------------------------------------------------

    async def _run_recorded(
        self, principal: Principal, call: ToolCall, conversation_id: UUID | None
    ) -> tuple[ToolOutcome, AppError | None]:
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
        ctx = ToolContext(principal.user.id, principal.api_key_id, call_id, conversation_id)
        finished, error = await self._attempt(
            principal, execution, call.name, call.arguments, ctx, self._executions.add
        )
        return self._finish(finished, call_id, call.name, error)

    async def _attempt(
        self,
        principal: Principal,
        execution: ToolExecution,
        name: str,
        raw_arguments: Any,
        ctx: ToolContext,
        save: Callable[[ToolExecution], Awaitable[None]],
    ) -> tuple[ToolExecution, AppError | None]:
        """Checks and runs the call, saves its ended record with `save` (one write), and
        returns that record with the call's error, if any."""
        started = time.perf_counter()

        def elapsed_ms() -> float:
            return (time.perf_counter() - started) * 1000

        error: AppError | None = None
        try:
            tool, args = self._prepare(principal, name, raw_arguments)
        except AppError as exc:
            execution = replace(execution, arguments=_recordable(raw_arguments))
            finished = self._failed(execution, exc, elapsed_ms())
            error = exc
        else:
            execution = replace(execution, arguments=args)
            try:
                result = await run_tool(tool, args, ctx, self._timeout)
            except AppError as exc:
                finished = self._failed(execution, exc, elapsed_ms())
                error = exc
            except asyncio.CancelledError:
                await self._save_abandoned(save, execution.cancel(elapsed_ms(), self._now()))
                raise
            else:
                finished = execution.succeed(result, elapsed_ms(), self._now())
        await save(finished)
        return finished, error

    def _prepare(
        self, principal: Principal, name: str, raw_arguments: Any
    ) -> tuple[Tool, dict[str, Any]]:
        tool = self.registry.require(name)
        principal.credential.require_tool(name)
        args = parse_arguments(raw_arguments)
        self.registry.validate(name, args)
        return tool, args

    def _failed(
        self, execution: ToolExecution, error: AppError, duration_ms: float
    ) -> ToolExecution:
        timed_out = isinstance(error, ToolTimeout)
        return execution.fail(
            error.code, error.message, duration_ms, self._now(), timed_out=timed_out
        )

    def _finish(
        self, execution: ToolExecution, call_id: str, name: str, error: AppError | None
    ) -> tuple[ToolOutcome, AppError | None]:
        label = name if self.registry.get(name) is not None else "unknown"
        if self._on_finished is not None:
            self._on_finished(label, execution.status.value)
        if error is not None:
            log.info("tool call failed", tool=label, tool_call_id=call_id, code=error.code)
        return ToolOutcome.of(execution, call_id, name), error

    async def _save_abandoned(
        self, save: Callable[[ToolExecution], Awaitable[None]], execution: ToolExecution
    ) -> None:
        """Best effort: a cancelled call still leaves its audit row, without delaying the
        cancellation when the database fails."""
        try:
            await asyncio.shield(save(execution))
        except Exception:
            log.warning("could not record a cancelled tool call", tool=execution.tool_name)
