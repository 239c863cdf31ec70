"""The turn's client options in the agent graph: forwarded on every model call, the length
budget spread over the run's calls, and the run ended at `length` when it is spent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from agent_api.application.agent.events import AgentEvent, LLMCallFinished
from agent_api.application.agent.graph import build_agent_graph, recursion_limit
from agent_api.application.agent.nodes import budget_spent, call_options
from agent_api.application.agent.state import AgentState, RunContext
from agent_api.domain.chat import ChatMessage, ChatResult, ToolSpec, TurnOptions, Usage
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.users import Role, User
from tests.unit.agent_fakes import FakeTools, MemoryRecorder, ScriptedChatModel, calls, text

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRINCIPAL = Principal(
    user=User(uuid.uuid4(), "a@b.c", "A", Role.USER, True, "x", NOW, NOW),
    credential=Credential(CredentialType.SESSION, uuid.uuid4()),
)
TOOLS = (ToolSpec("calculator", "math", {"type": "object"}),)
SAMPLING = {"temperature": 0.3, "stop": ["END"], "response_format": {"type": "json_object"}}


async def run(
    model: ScriptedChatModel, options: TurnOptions, *, stream: bool = False
) -> tuple[list[AgentEvent], MemoryRecorder, FakeTools]:
    recorder, tools = MemoryRecorder(), FakeTools()
    graph = build_agent_graph(model, tools, 5, max_concurrent_tools=2)
    context = RunContext(PRINCIPAL, uuid.uuid4(), "fake", TOOLS, stream, recorder, options)
    initial: AgentState = {"history": [ChatMessage.user("6*7?")], "iteration": 0}
    events = [
        event
        async for event in graph.astream(
            initial,
            context=context,
            stream_mode="custom",
            config={"recursion_limit": recursion_limit(5)},
        )
    ]
    return events, recorder, tools


def finished(events: list[AgentEvent]) -> list[LLMCallFinished]:
    return [e for e in events if isinstance(e, LLMCallFinished)]


async def test_every_call_of_a_tool_run_carries_the_clients_fields() -> None:
    model = ScriptedChatModel(calls(("c1", "calculator", {"expression": "6*7"})), text("42"))
    await run(model, TurnOptions(upstream=SAMPLING))
    assert len(model.requests) == 2
    assert all(request.options == SAMPLING for request in model.requests)


async def test_each_call_is_bounded_by_what_the_run_has_left() -> None:
    # calls() spends 3 completion tokens: the answer's call may use the 7 that remain.
    model = ScriptedChatModel(calls(("c1", "calculator", {})), text("42", completion=5))
    options = TurnOptions(upstream={**SAMPLING, "max_tokens": 10}, max_completion_tokens=10)
    events, _, _ = await run(model, options, stream=True)
    assert [r.options["max_tokens"] for r in model.requests] == [10, 7]
    assert "max_completion_tokens" not in model.requests[1].options
    assert [e.finish_reason for e in finished(events)] == ["tool_calls", "stop"]


async def test_the_bound_keeps_the_field_name_the_client_used() -> None:
    model = ScriptedChatModel(calls(("c1", "calculator", {})), text("42"))
    options = TurnOptions(upstream={"max_completion_tokens": 50}, max_completion_tokens=50)
    await run(model, options)
    assert [r.options for r in model.requests] == [
        {"max_completion_tokens": 50},
        {"max_completion_tokens": 47},
    ]


async def test_a_spent_budget_ends_the_run_at_length_without_unanswered_calls() -> None:
    model = ScriptedChatModel(calls(("c1", "calculator", {"expression": "6*7"})), text("never"))
    options = TurnOptions(upstream={"max_tokens": 3}, max_completion_tokens=3)
    events, recorder, tools = await run(model, options)
    assert len(model.requests) == 1  # no further model call
    assert tools.ran == []
    assert [m.role for m in recorder.messages] == ["assistant"]
    assert recorder.messages[0].tool_calls == ()
    assert [e.finish_reason for e in finished(events)] == ["length"]


async def test_a_plain_answer_reaching_the_budget_keeps_its_own_reason() -> None:
    model = ScriptedChatModel(text("done", completion=3))
    options = TurnOptions(upstream={"max_tokens": 3}, max_completion_tokens=3)
    events, recorder, _ = await run(model, options)
    assert [e.finish_reason for e in finished(events)] == ["stop"]
    assert recorder.messages[-1].content == "done"


async def test_the_last_calls_logprobs_are_reported() -> None:
    logprobs = {"content": [{"token": "42", "logprob": -0.1, "bytes": [52, 50]}]}
    answer = ChatResult(ChatMessage.assistant("42"), "stop", Usage(1, 1), "fake", logprobs)
    model = ScriptedChatModel(calls(("c1", "calculator", {})), answer)
    events, _, _ = await run(model, TurnOptions(upstream={"logprobs": True}))
    assert [e.logprobs for e in finished(events)] == [None, logprobs]


def test_without_a_budget_the_fields_go_as_sent_and_nothing_is_spent() -> None:
    options = TurnOptions(upstream=SAMPLING)
    assert call_options(options, 10_000) == SAMPLING
    assert not budget_spent(options, 10_000)
    assert budget_spent(TurnOptions(max_completion_tokens=5), 5)
    assert not budget_spent(TurnOptions(max_completion_tokens=5), 4)
