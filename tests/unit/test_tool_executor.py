"""The tool executor with an in-memory execution store and test tools: the order of the
checks, timeouts, failures that must not leak, bounded parallel batches, exactly-once
approved runs, one audit record per call written before its tool runs, and tools that need
approval refused outside the agent."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from agent_api.domain.chat import ToolCall
from agent_api.domain.conversations import DecidedToolCall, Decision, PendingToolCall
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import (
    InvalidArguments,
    InvalidRequest,
    ServiceUnavailable,
    ToolFailed,
    ToolForbidden,
    ToolNeedsApproval,
    ToolNotFound,
    ToolTimeout,
)
from agent_api.domain.tool_executions import (
    ApprovalDecision,
    ToolExecution,
    ToolExecutionStatus,
)
from agent_api.domain.users import Role, User
from agent_api.tools.base import ToolContext
from agent_api.tools.calculator import Calculator
from agent_api.tools.executor import ToolExecutor
from agent_api.tools.outcome import RECORDING_FAILED, ToolOutcome
from agent_api.tools.registry import ToolRegistry

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeToolExecutionRepository:
    def __init__(self) -> None:
        self.rows: dict[UUID, ToolExecution] = {}
        self.writes = 0

    async def add(self, execution: ToolExecution) -> None:
        self.writes += 1
        self.rows[execution.id] = execution

    async def claim_approved(self, execution_id: UUID, user_id: UUID) -> ToolExecution | None:
        row = self.rows.get(execution_id)
        if (
            row is None
            or row.user_id != user_id
            or row.status is not ToolExecutionStatus.PENDING_APPROVAL
            or row.decision is not ApprovalDecision.APPROVED
        ):
            return None
        self.rows[execution_id] = dataclasses.replace(row, status=ToolExecutionStatus.RUNNING)
        return self.rows[execution_id]

    async def finish(self, execution: ToolExecution) -> None:
        self.writes += 1
        assert self.rows[execution.id].status is ToolExecutionStatus.RUNNING
        self.rows[execution.id] = execution

    async def get(self, execution_id: UUID, user_id: UUID) -> ToolExecution | None:
        row = self.rows.get(execution_id)
        return row if row and row.user_id == user_id else None

    async def list_for_user(
        self, user_id: UUID, *, conversation_id: UUID | None = None, limit: int = 50
    ) -> list[ToolExecution]:
        return [r for r in self.rows.values() if r.user_id == user_id][:limit]

    def only(self) -> ToolExecution:
        assert len(self.rows) == 1
        return next(iter(self.rows.values()))


class Echo:
    name = "echo"
    description = "Echoes its text and who asked."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 20}},
        "required": ["text"],
        "additionalProperties": False,
    }
    requires_approval = False

    def __init__(self) -> None:
        self.contexts: list[ToolContext] = []

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        self.contexts.append(ctx)
        return {"echo": args["text"]}


class Misbehaving:
    """`mode` picks the misbehaviour: crash, nan, fail, sleep, probe."""

    description = "A tool that misbehaves on purpose."
    parameters: dict[str, Any] = {"type": "object"}
    requires_approval = False

    def __init__(self, name: str, mode: str) -> None:
        self.name = name
        self.mode = mode
        self.active = 0
        self.peak = 0

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        if self.mode == "crash":
            raise RuntimeError("password=hunter2 at /srv/secret/path.py")
        if self.mode == "nan":
            return {"value": float("nan")}
        if self.mode == "fail":
            raise ToolFailed("the widget is out of stock")
        if self.mode == "sleep":
            await asyncio.sleep(30)
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.02)
        self.active -= 1
        return {"n": args.get("n")}


def principal(allowed_tools: frozenset[str] | None = None, *, api_key: bool = True) -> Principal:
    user = User(
        id=uuid.uuid4(),
        email="ada@example.com",
        name="Ada",
        role=Role.USER,
        is_active=True,
        password_hash="x",
        created_at=NOW,
        updated_at=NOW,
    )
    kind = CredentialType.API_KEY if api_key else CredentialType.SESSION
    return Principal(user, Credential(type=kind, id=uuid.uuid4(), allowed_tools=allowed_tools))


class Harness:
    def __init__(
        self,
        *tools: Any,
        timeout: float = 5.0,
        max_concurrent: int = 4,
        requiring_approval: tuple[str, ...] = (),
    ) -> None:
        self.registry = ToolRegistry(requiring_approval=requiring_approval)
        for tool in (Calculator(), Echo(), *tools):
            self.registry.register(tool)
        self.repo = FakeToolExecutionRepository()
        self.counted: list[tuple[str, str]] = []
        self.executor = ToolExecutor(
            self.registry,
            self.repo,
            timeout_seconds=timeout,
            max_concurrent=max_concurrent,
            on_finished=lambda tool, status: self.counted.append((tool, status)),
            clock=lambda: NOW,
        )


def call(name: str, arguments: Any, call_id: str = "call_1") -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=arguments)


async def test_success_is_returned_and_recorded_once() -> None:
    h = Harness()
    who = principal()
    outcome = await h.executor.execute(who, call("calculator", '{"expression": "6*7"}'))
    assert dataclasses.replace(outcome, duration_ms=0) == ToolOutcome(
        "call_1", "calculator", ok=True, result={"expression": "6*7", "result": 42}
    )
    row = h.repo.only()
    assert h.repo.writes == 2  # `running` before the tool runs, its end after
    assert row.status is ToolExecutionStatus.SUCCEEDED
    assert (row.user_id, row.api_key_id, row.conversation_id) == (who.user.id, who.api_key_id, None)
    assert row.arguments == {"expression": "6*7"}
    assert row.result == {"expression": "6*7", "result": 42}
    assert row.error_code is None
    assert row.duration_ms is not None
    assert h.counted == [("calculator", "succeeded")]


async def test_a_failed_outcome_carries_its_error_and_raises_it_on_demand() -> None:
    h = Harness()
    outcome = await h.executor.run(principal(), call("calculator", '{"expression": "1/0"}'))
    assert (outcome.ok, outcome.error_code) == (False, "TOOL_FAILED")
    assert isinstance(outcome.error, ToolFailed)
    assert outcome.error_message == outcome.error.message
    with pytest.raises(ToolFailed) as caught:
        outcome.raise_for_error()
    assert caught.value is outcome.error
    success = await h.executor.run(principal(), call("calculator", '{"expression": "1"}'))
    assert success.error is None
    success.raise_for_error()  # a success raises nothing


async def test_the_tool_gets_the_caller_as_context() -> None:
    echo = Echo()
    h = Harness()
    h.registry = ToolRegistry()
    h.registry.register(echo)
    h.executor = ToolExecutor(h.registry, h.repo, timeout_seconds=1, max_concurrent=1)
    who = principal(api_key=False)
    conversation = uuid.uuid4()
    await h.executor.execute(who, call("echo", {"text": "hi"}, "call_9"), conversation)
    assert echo.contexts == [ToolContext(who.user.id, None, "call_9", conversation)]


async def test_missing_call_id_is_generated() -> None:
    h = Harness()
    outcome = await h.executor.execute(principal(), call("echo", '{"text": "x"}', call_id=""))
    assert outcome.tool_call_id.startswith("call_")
    assert h.repo.only().tool_call_id == outcome.tool_call_id


@pytest.mark.parametrize(
    ("allowed", "name", "arguments", "error"),
    [
        # existence first, even for a credential that may use nothing
        (frozenset(), "weather", "{}", ToolNotFound),
        # then the ACL, before looking at the arguments
        (frozenset({"echo"}), "calculator", "not json", ToolForbidden),
        (None, "echo", "not json", InvalidArguments),
        (None, "echo", "[1, 2]", InvalidArguments),
        (None, "echo", '{"text": 5}', InvalidArguments),
        (None, "echo", '{"text": "x", "extra": 1}', InvalidArguments),
    ],
)
async def test_checks_in_order_and_failures_are_recorded(
    allowed: frozenset[str] | None, name: str, arguments: str, error: type[Exception]
) -> None:
    h = Harness()
    with pytest.raises(error) as caught:
        await h.executor.execute(principal(allowed), call(name, arguments))
    row = h.repo.only()
    assert row.status is ToolExecutionStatus.FAILED
    assert row.error_code == caught.value.code  # type: ignore[attr-defined]
    assert row.error_message == str(caught.value)
    label = name if name != "weather" else "unknown"
    assert h.counted == [(label, "failed")]


async def test_invalid_arguments_name_the_field() -> None:
    h = Harness()
    with pytest.raises(InvalidArguments) as caught:
        await h.executor.execute(principal(), call("echo", '{"text": "' + "x" * 50 + '"}'))
    assert caught.value.param == "text"
    assert caught.value.details == [
        {"field": "text", "message": "must be at most 20 characters long"}
    ]
    assert "x" * 21 not in caught.value.message  # the value is not echoed back


async def test_undecodable_arguments_are_kept_raw_for_the_audit() -> None:
    h = Harness()
    outcome = await h.executor.run(principal(), call("echo", '{"text": '))
    assert not outcome.ok
    assert outcome.error_code == "INVALID_ARGUMENTS"
    assert h.repo.only().arguments == '{"text": '


async def test_check_validates_without_recording() -> None:
    h = Harness()
    assert h.executor.check(principal(), call("echo", '{"text": "a"}')) == {"text": "a"}
    with pytest.raises(ToolForbidden):
        h.executor.check(principal(frozenset()), call("echo", '{"text": "a"}'))
    assert h.repo.rows == {}


async def test_tool_failure_message_reaches_the_caller() -> None:
    h = Harness(Misbehaving("shop", "fail"))
    with pytest.raises(ToolFailed, match="out of stock"):
        await h.executor.execute(principal(), call("shop", "{}"))
    assert h.repo.only().error_message == "the widget is out of stock"


async def test_unexpected_exceptions_become_tool_failed_without_internals() -> None:
    h = Harness(Misbehaving("crashy", "crash"))
    outcome = await h.executor.run(principal(), call("crashy", "{}"))
    assert outcome.error_code == "TOOL_FAILED"
    assert outcome.error_message == "the tool 'crashy' failed unexpectedly"
    assert "hunter2" not in repr(h.repo.only())


async def test_non_json_results_are_refused() -> None:
    h = Harness(Misbehaving("nanny", "nan"))
    with pytest.raises(ToolFailed, match="not JSON"):
        await h.executor.execute(principal(), call("nanny", "{}"))
    assert h.repo.only().result is None


async def test_timeout_is_tool_timeout_and_recorded_as_timed_out() -> None:
    h = Harness(Misbehaving("sleepy", "sleep"), timeout=0.05)
    with pytest.raises(ToolTimeout, match=r"did not finish within 0\.05 s"):
        await h.executor.execute(principal(), call("sleepy", "{}"))
    row = h.repo.only()
    assert row.status is ToolExecutionStatus.TIMED_OUT
    assert row.error_code == "TOOL_TIMEOUT"
    assert h.counted == [("sleepy", "timed_out")]


async def test_a_cancelled_call_is_recorded_as_cancelled() -> None:
    h = Harness(Misbehaving("sleepy", "sleep"))
    task = asyncio.ensure_future(h.executor.execute(principal(), call("sleepy", "{}")))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.repo.only().status is ToolExecutionStatus.CANCELLED


async def test_run_many_keeps_order_and_reports_each_failure() -> None:
    h = Harness()
    calls = [
        call("calculator", '{"expression": "1+1"}', "a"),
        call("calculator", '{"expression": "1/0"}', "b"),
        call("nope", "{}", "c"),
        call("echo", '{"text": "ok"}', "d"),
    ]
    outcomes = await h.executor.run_many(principal(), calls)
    assert [o.tool_call_id for o in outcomes] == ["a", "b", "c", "d"]
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert (outcomes[1].error_code, outcomes[1].error_message) == (
        "TOOL_FAILED",
        "division by zero",
    )
    assert outcomes[2].error_code == "TOOL_NOT_FOUND"
    assert h.repo.writes == 7  # 2 per call that ran (before and after), 1 per refusal


async def test_run_many_runs_in_parallel_but_at_most_max_concurrent() -> None:
    probe = Misbehaving("probe", "probe")
    h = Harness(probe, max_concurrent=3)
    calls = [call("probe", {"n": i}, f"c{i}") for i in range(8)]
    outcomes = await h.executor.run_many(principal(), calls)
    assert [o.result for o in outcomes] == [{"n": i} for i in range(8)]
    assert probe.peak == 3


def _approved_row(
    who: Principal, arguments: dict[str, Any], decision: ApprovalDecision
) -> ToolExecution:
    return ToolExecution(
        id=uuid.uuid4(),
        user_id=who.user.id,
        tool_name="calculator",
        tool_call_id="call_7",
        status=ToolExecutionStatus.PENDING_APPROVAL,
        created_at=NOW,
        arguments=arguments,
        original_arguments=arguments,
        requires_approval=True,
        decision=decision,
    )


def _decided(row: ToolExecution, edited: dict[str, Any] | None = None) -> DecidedToolCall:
    pending = PendingToolCall(
        execution_id=row.id,
        tool_call_id="call_7",
        name="calculator",
        arguments=row.original_arguments,
        reason="configured",
        requested_at=NOW,
    )
    return DecidedToolCall(pending, Decision(approved=True, arguments=edited))


async def test_an_approved_call_runs_once_with_the_edited_arguments() -> None:
    h = Harness(requiring_approval=("calculator",))
    who = principal()
    row = _approved_row(who, {"expression": "2+2"}, ApprovalDecision.APPROVED)
    await h.repo.add(row)
    decided = _decided(row, edited={"expression": "3+3"})
    conversation = uuid.uuid4()
    outcome = await h.executor.run_approved(who, decided, conversation)
    assert outcome is not None
    assert outcome.result == {"expression": "3+3", "result": 6}
    assert h.repo.rows[row.id].status is ToolExecutionStatus.SUCCEEDED
    assert await h.executor.run_approved(who, decided, conversation) is None


async def test_an_approved_call_still_obeys_the_approvers_acl() -> None:
    h = Harness(requiring_approval=("calculator",))
    who = principal(frozenset({"echo"}))
    row = _approved_row(who, {"expression": "2+2"}, ApprovalDecision.APPROVED)
    await h.repo.add(row)
    outcome = await h.executor.run_approved(who, _decided(row), uuid.uuid4())
    assert outcome is not None
    assert outcome.error_code == "TOOL_FORBIDDEN"
    assert h.repo.rows[row.id].status is ToolExecutionStatus.FAILED


async def test_a_rejected_or_foreign_call_is_not_run() -> None:
    h = Harness(requiring_approval=("calculator",))
    who = principal()
    rejected = _approved_row(who, {"expression": "1"}, ApprovalDecision.REJECTED)
    await h.repo.add(rejected)
    assert await h.executor.run_approved(who, _decided(rejected), uuid.uuid4()) is None
    approved = _approved_row(who, {"expression": "1"}, ApprovalDecision.APPROVED)
    await h.repo.add(approved)
    assert await h.executor.run_approved(principal(), _decided(approved), uuid.uuid4()) is None


def test_listing_follows_the_credential_and_the_approval_policy() -> None:
    h = Harness(requiring_approval=("calculator",))
    everything = h.executor.specs_for(principal())
    assert [s.name for s in everything] == ["calculator", "echo"]
    assert [h.executor.approval_reason(s.name) is not None for s in everything] == [True, False]
    only_echo = h.executor.specs_for(principal(frozenset({"echo", "ghost"})))
    assert [s.name for s in only_echo] == ["echo"]
    specs = h.executor.specs_for(principal(frozenset({"calculator"})))
    assert [s.name for s in specs] == ["calculator"]
    assert h.executor.approval_reason("calculator") is not None
    assert h.executor.approval_reason("echo") is None


# --- recording comes first, and approval-only tools never run directly ---------------------


class Spy:
    """Looks at its own audit row while it runs."""

    name = "spy"
    description = "Reports the status of its audit row."
    parameters: dict[str, Any] = {"type": "object"}
    requires_approval = False

    def __init__(self, repo: FakeToolExecutionRepository) -> None:
        self.repo = repo
        self.seen: list[str] = []

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        self.seen = [row.status.value for row in self.repo.rows.values()]
        return "seen"


class FailingInserts(FakeToolExecutionRepository):
    """The database refuses every INSERT whose call id is in `broken`."""

    def __init__(self, *broken: str) -> None:
        super().__init__()
        self.broken = set(broken)

    async def add(self, execution: ToolExecution) -> None:
        if execution.tool_call_id in self.broken:
            raise ServiceUnavailable("the database is unavailable")
        await super().add(execution)


async def test_the_running_row_is_written_before_the_tool_runs() -> None:
    h = Harness()
    spy = Spy(h.repo)
    h.registry.register(spy)
    outcome = await h.executor.execute(principal(), call("spy", "{}"))
    assert outcome.result == "seen"
    assert spy.seen == ["running"]
    assert h.repo.only().status is ToolExecutionStatus.SUCCEEDED
    assert h.repo.writes == 2  # the INSERT before, the UPDATE after


async def test_a_call_that_cannot_be_recorded_never_runs() -> None:
    probe = Misbehaving("probe", "probe")
    h = Harness(probe)
    h.repo = FailingInserts("call_1")
    h.executor = ToolExecutor(h.registry, h.repo, timeout_seconds=1, max_concurrent=2)
    with pytest.raises(ServiceUnavailable):
        await h.executor.execute(principal(), call("probe", "{}"))
    assert probe.peak == 0
    assert h.repo.rows == {}


async def test_a_batch_item_that_cannot_be_recorded_does_not_stop_the_others() -> None:
    probe = Misbehaving("probe", "probe")
    h = Harness(probe)
    h.repo = FailingInserts("b")
    h.executor = ToolExecutor(h.registry, h.repo, timeout_seconds=1, max_concurrent=2)
    calls = [call("probe", {"n": 1}, "a"), call("probe", {"n": 2}, "b"), call("probe", {}, "c")]
    outcomes = await h.executor.run_many(principal(), calls)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error_code == RECORDING_FAILED
    assert sorted(row.tool_call_id or "" for row in h.repo.rows.values()) == ["a", "c"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ('{"text": "a\\u0000b"}', "text"),
        ({"text": "ok", "x\u0000": 1}, "x\ufffd"),
        ({"text": "ok", "list": [{"deep": "\u0000"}]}, "list.0.deep"),
        ('{"text": "\\ud800"}', "text"),
    ],
)
async def test_arguments_the_audit_cannot_store_are_refused_before_running(
    arguments: Any, field: str
) -> None:
    h = Harness()
    echo = Echo()
    h.registry = ToolRegistry()
    h.registry.register(echo)
    h.executor = ToolExecutor(h.registry, h.repo, timeout_seconds=1, max_concurrent=1)
    with pytest.raises(InvalidArguments) as caught:
        await h.executor.execute(principal(), call("echo", arguments))
    assert caught.value.param == field
    assert echo.contexts == []
    assert h.repo.only().error_code == "INVALID_ARGUMENTS"


@pytest.mark.parametrize("call_id", ["x" * 101, "call\u00001", "call\n1", "call\ud8001"])
async def test_a_call_id_that_cannot_be_recorded_is_refused(call_id: str) -> None:
    h = Harness()
    with pytest.raises(InvalidRequest) as caught:
        await h.executor.execute(principal(), call("echo", '{"text": "x"}', call_id))
    assert caught.value.param == "id"
    row = h.repo.only()
    assert row.status is ToolExecutionStatus.FAILED
    assert row.error_code == "INVALID_REQUEST"


async def test_a_tool_that_needs_approval_is_refused_outside_the_agent() -> None:
    h = Harness(requiring_approval=("calculator",))
    with pytest.raises(ToolNeedsApproval):
        await h.executor.execute(principal(), call("calculator", '{"expression": "1"}'))
    outcome = await h.executor.run(principal(), call("calculator", '{"expression": "1"}'))
    assert outcome.error_code == "APPROVAL_REQUIRED"
    assert [row.status for row in h.repo.rows.values()] == [ToolExecutionStatus.FAILED] * 2
    # ...but the agent may still check it before asking for the decision.
    assert h.executor.check(principal(), call("calculator", '{"expression": "1"}')) == {
        "expression": "1"
    }
