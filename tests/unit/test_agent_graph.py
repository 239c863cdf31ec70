"""The agent graph on fakes: routing, tool rounds, approvals, the iteration limit, resume."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from agent_api.application.agent.events import (
    AgentEvent,
    ApprovalRequired,
    ContentDelta,
    LLMCallFinished,
    ToolCallRequested,
    ToolFinished,
)
from agent_api.application.agent.graph import build_agent_graph, recursion_limit
from agent_api.application.agent.nodes import ITERATION_LIMIT_NOTE, STEP_LIMIT_CODE
from agent_api.application.agent.state import AgentState, RunContext
from agent_api.domain.chat import ChatMessage, ToolSpec
from agent_api.domain.conversations import (
    AgentType,
    DecidedToolCall,
    Decision,
    PendingToolCall,
)
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.users import Role, User
from tests.unit.agent_fakes import FakeTools, MemoryRecorder, ScriptedChatModel, calls, text

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRINCIPAL = Principal(
    user=User(uuid.uuid4(), "a@b.c", "A", Role.USER, True, "x", NOW, NOW),
    credential=Credential(CredentialType.SESSION, uuid.uuid4()),
)
TOOLS = (ToolSpec("calculator", "math", {"type": "object"}),)


async def run(
    model: ScriptedChatModel,
    tools: FakeTools,
    state: dict[str, Any],
    *,
    stream: bool = True,
    max_iterations: int = 10,
    max_tool_calls_per_step: int = 32,
) -> tuple[list[AgentEvent], MemoryRecorder]:
    recorder = MemoryRecorder()
    graph = build_agent_graph(
        model,
        tools,
        max_iterations,
        max_concurrent_tools=2,
        max_tool_calls_per_step=max_tool_calls_per_step,
    )
    context = RunContext(PRINCIPAL, uuid.uuid4(), "fake", TOOLS, stream, recorder)
    initial: AgentState = {"history": [ChatMessage(role="user", content="hi")], "iteration": 0}
    initial.update(state)  # type: ignore[typeddict-item]
    events = [
        event
        async for event in graph.astream(
            initial,
            context=context,
            stream_mode="custom",
            config={"recursion_limit": recursion_limit(max_iterations)},
        )
    ]
    return events, recorder


async def test_plain_answer_streams_text_and_uses_the_routed_prompt() -> None:
    model = ScriptedChatModel(text("Hello world"))
    events, recorder = await run(model, FakeTools(), {"user_message": "debug my code"})
    deltas = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert deltas.strip() == "Hello world"
    assert [m.role for m in recorder.messages] == ["assistant"]
    system = model.requests[0].messages[0]
    assert system.role == "system"
    assert system.content is not None
    assert system.content.startswith("You are an expert programmer.")
    assert model.requests[0].tools == TOOLS


async def test_non_stream_run_emits_no_deltas() -> None:
    events, _ = await run(ScriptedChatModel(text("Hello")), FakeTools(), {}, stream=False)
    assert not [e for e in events if isinstance(e, ContentDelta)]
    assert [e for e in events if isinstance(e, LLMCallFinished)]


async def test_tool_round_runs_the_tool_and_feeds_the_result_back() -> None:
    model = ScriptedChatModel(
        calls(("c1", "calculator", {"expression": "6*7"})), text("The answer is 42")
    )
    tools = FakeTools()
    events, recorder = await run(model, tools, {})
    assert tools.ran == [("calculator", {"expression": "6*7"})]
    assert [m.role for m in recorder.messages] == ["assistant", "tool", "assistant"]
    assert [type(e) for e in events if isinstance(e, ToolCallRequested | ToolFinished)] == [
        ToolCallRequested,
        ToolFinished,
    ]
    second = model.requests[1].messages
    assert [m.role for m in second[1:]] == ["user", "assistant", "tool"]
    assert second[-1].tool_call_id == "c1"


async def test_tool_errors_become_results_the_model_reads() -> None:
    model = ScriptedChatModel(
        calls(("c1", "nope", {}), ("c2", "secret", {}), ("c3", "calculator", {"x": 1})),
        text("sorry"),
    )
    events, recorder = await run(model, FakeTools(), {})
    outcomes = [e.outcome for e in events if isinstance(e, ToolFinished)]
    assert [o.ok for o in outcomes] == [False, False, True]
    assert outcomes[0].error_code == "ToolNotFound"
    assert outcomes[1].error_code == "ToolForbidden"
    assert recorder.messages[-1].content == "sorry"


async def test_call_needing_approval_pauses_after_running_the_others_once() -> None:
    model = ScriptedChatModel(
        calls(("c1", "calculator", {"expression": "1+1"}), ("c2", "delete_file", {"path": "x"})),
        text("unreachable"),
    )
    tools = FakeTools()
    events, _recorder = await run(model, tools, {})
    assert tools.ran == [("calculator", {"expression": "1+1"})]
    approvals = [e for e in events if isinstance(e, ApprovalRequired)]
    assert len(approvals) == 1
    (pending,) = approvals[0].pending
    assert (pending.tool_call_id, pending.name, pending.arguments) == (
        "c2",
        "delete_file",
        {"path": "x"},
    )
    assert pending.reason == "Tool 'delete_file' requires approval"
    assert len(model.requests) == 1  # the run ended at the pause


async def test_iteration_limit_ends_with_an_answer_and_no_tools_offered() -> None:
    model = ScriptedChatModel(
        calls(("c1", "calculator", {"expression": "1"})),
        calls(("c2", "calculator", {"expression": "2"})),
        calls(("c3", "calculator", {"expression": "3"})),
        text("here is what I have"),
    )
    tools = FakeTools()
    _, recorder = await run(model, tools, {}, max_iterations=2)
    assert len(tools.ran) == 2
    last_request = model.requests[-1]
    assert last_request.tools == ()
    assert any(m.content == ITERATION_LIMIT_NOTE for m in last_request.messages)
    # A model that asks for tools anyway cannot: the third request's calls are dropped.
    assert recorder.messages[-1].tool_calls == ()


async def test_resume_runs_approved_calls_with_edited_arguments_then_answers() -> None:
    pending = PendingToolCall(uuid.uuid4(), "c2", "delete_file", {"path": "x"}, "r", NOW)
    decided = DecidedToolCall(pending, Decision(approved=True, arguments={"path": "y"}))
    model = ScriptedChatModel(text("done"))
    tools = FakeTools()
    history = [
        ChatMessage(role="user", content="delete x"),
        calls(("c2", "delete_file", {"path": "x"})).message,
    ]
    _events, recorder = await run(
        model, tools, {"history": history, "approved": [decided], "agent": AgentType.GENERAL}
    )
    assert tools.ran == [("delete_file", {"path": "y"})]
    assert [m.role for m in recorder.messages] == ["tool", "assistant"]
    assert model.requests[0].messages[-1].tool_call_id == "c2"


async def test_resume_of_a_call_that_already_ran_does_not_run_it_again() -> None:
    pending = PendingToolCall(uuid.uuid4(), "c2", "delete_file", {}, "r", NOW)
    tools = FakeTools()
    tools.already_ran.add(pending.execution_id)
    history = [ChatMessage(role="user", content="x"), calls(("c2", "delete_file", {})).message]
    _, _ = await run(
        ScriptedChatModel(text("ok")),
        tools,
        {
            "history": history,
            "approved": [DecidedToolCall(pending, Decision(True))],
            "agent": AgentType.GENERAL,
        },
    )
    assert tools.ran == []


async def test_a_rounds_calls_run_in_parallel_within_the_bound() -> None:
    five = calls(*((f"c{i}", "calculator", {"expression": str(i)}) for i in range(5)))
    tools = FakeTools(run_seconds=0.02)
    _, recorder = await run(ScriptedChatModel(five, text("done")), tools, {})
    assert len(tools.ran) == 5
    assert tools.peak == 2  # max_concurrent_tools in `run`
    assert [m.tool_call_id for m in recorder.messages if m.role == "tool"] == [
        f"c{i}" for i in range(5)
    ]


async def test_only_the_first_calls_of_one_answer_run_and_the_rest_are_answered() -> None:
    asked = [(f"c{i}", "calculator", {"expression": str(i)}) for i in range(5)]
    model = ScriptedChatModel(calls(*asked), text("done"))
    tools = FakeTools()
    events, recorder = await run(model, tools, {}, max_tool_calls_per_step=2)
    assert tools.ran == [("calculator", {"expression": "0"}), ("calculator", {"expression": "1"})]
    outcomes = {e.outcome.tool_call_id: e.outcome for e in events if isinstance(e, ToolFinished)}
    assert sorted(outcomes) == [f"c{i}" for i in range(5)]  # every call is answered
    assert [outcomes[f"c{i}"].ok for i in range(5)] == [True, True, False, False, False]
    refused = outcomes["c4"]
    assert refused.error_code == STEP_LIMIT_CODE
    assert refused.error_message is not None
    assert "not run" in refused.error_message
    # The model's next request carries one tool result per call it made.
    second = model.requests[1].messages
    assert sorted(m.tool_call_id or "" for m in second if m.role == "tool") == [
        f"c{i}" for i in range(5)
    ]
    assert recorder.messages[-1].content == "done"


async def test_calls_beyond_the_limit_are_not_sent_for_approval() -> None:
    model = ScriptedChatModel(
        calls(("c1", "calculator", {"expression": "1"}), ("c2", "delete_file", {"path": "x"})),
        text("answered without the deletion"),
    )
    tools = FakeTools()
    events, _ = await run(model, tools, {}, max_tool_calls_per_step=1)
    assert not [e for e in events if isinstance(e, ApprovalRequired)]
    assert tools.ran == [("calculator", {"expression": "1"})]
    refused = [e.outcome for e in events if isinstance(e, ToolFinished) and not e.outcome.ok]
    assert [(o.tool_call_id, o.error_code) for o in refused] == [("c2", STEP_LIMIT_CODE)]
