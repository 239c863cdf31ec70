"""The agent graph with the client's own tools: what the model is offered, which calls run
here, when the run parks, and how `tool_choice` shapes each model call."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from agent_api.api.routers.openai_schemas import ChatCompletionRequest
from agent_api.application.agent.events import (
    AgentEvent,
    ApprovalRequired,
    ClientToolsRequired,
    ToolFinished,
)
from agent_api.application.agent.graph import build_agent_graph, recursion_limit
from agent_api.application.agent.nodes import DEFERRED_CODE
from agent_api.application.agent.state import AgentState, RunContext
from agent_api.domain.chat import ChatMessage, ChatRequest, ToolSpec, TurnOptions
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import InvalidRequest
from agent_api.domain.users import Role, User
from agent_api.infrastructure.llm.openai_wire import request_body
from tests.unit.agent_fakes import FakeTools, MemoryRecorder, ScriptedChatModel, calls, text

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRINCIPAL = Principal(
    user=User(uuid.uuid4(), "a@b.c", "A", Role.USER, True, "x", NOW, NOW),
    credential=Credential(CredentialType.SESSION, uuid.uuid4()),
)
SERVER = (ToolSpec("calculator", "math", {"type": "object"}),)
WEATHER = ToolSpec("get_weather", "the weather in a city", {"type": "object"})


async def run(
    model: ScriptedChatModel, options: TurnOptions, tools: FakeTools | None = None
) -> tuple[list[AgentEvent], MemoryRecorder, FakeTools]:
    tools = tools or FakeTools()
    recorder = MemoryRecorder()
    graph = build_agent_graph(model, tools, 5, max_concurrent_tools=2)
    context = RunContext(PRINCIPAL, uuid.uuid4(), "fake", SERVER, False, recorder, options=options)
    initial: AgentState = {"history": [ChatMessage.user("hi")], "iteration": 0}
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


async def test_the_model_is_offered_server_and_client_tools() -> None:
    model = ScriptedChatModel(text("hello"))
    await run(model, TurnOptions(client_tools=(WEATHER,)))
    assert [t.name for t in model.requests[0].tools] == ["calculator", "get_weather"]
    assert model.requests[0].tool_choice is None  # auto: the upstream's default


async def test_a_mixed_step_runs_the_server_call_and_parks_on_the_client_call() -> None:
    model = ScriptedChatModel(
        calls(("s1", "calculator", {"expression": "1+1"}), ("c1", "get_weather", {"city": "X"})),
        text("never asked"),
    )
    events, recorder, tools = await run(model, TurnOptions(client_tools=(WEATHER,)))
    assert tools.ran == [("calculator", {"expression": "1+1"})]
    parked = [e for e in events if isinstance(e, ClientToolsRequired)]
    assert len(parked) == 1
    assert [(c.id, c.name, json.loads(c.arguments)) for c in parked[0].calls] == [
        ("c1", "get_weather", {"city": "X"})
    ]
    # The server call is answered; the client's stays open; the model is not asked again.
    assert [(m.role, m.tool_call_id) for m in recorder.messages] == [
        ("assistant", None),
        ("tool", "s1"),
    ]
    assert len(model.requests) == 1


async def test_a_client_call_beside_one_needing_approval_defers_the_approval() -> None:
    model = ScriptedChatModel(
        calls(("d1", "delete_file", {"path": "x"}), ("c1", "get_weather", {"city": "X"}))
    )
    events, recorder, tools = await run(model, TurnOptions(client_tools=(WEATHER,)))
    assert not any(isinstance(e, ApprovalRequired) for e in events)
    assert recorder.pending == []
    (finished,) = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.outcome.tool_call_id == "d1"
    assert finished.outcome.error_code == DEFERRED_CODE
    assert tools.ran == []
    assert any(isinstance(e, ClientToolsRequired) for e in events)


async def test_without_client_calls_the_loop_runs_as_before() -> None:
    model = ScriptedChatModel(calls(("s1", "calculator", {"expression": "2"})), text("4"))
    events, recorder, _ = await run(model, TurnOptions(client_tools=(WEATHER,)))
    assert not any(isinstance(e, ClientToolsRequired) for e in events)
    assert recorder.messages[-1].content == "4"


async def test_tool_choice_none_offers_no_tools_and_runs_none() -> None:
    model = ScriptedChatModel(calls(("s1", "calculator", {"expression": "2"})), text("x"))
    _, recorder, tools = await run(model, TurnOptions(client_tools=(WEATHER,), tool_choice="none"))
    assert model.requests[0].tools == ()
    assert model.requests[0].tool_choice is None
    assert tools.ran == []
    assert recorder.messages[0].tool_calls == ()  # a call it made anyway is not kept
    assert len(model.requests) == 1


@pytest.mark.parametrize("choice", ["required", "get_weather", "calculator"])
async def test_a_forcing_choice_binds_only_the_first_call(choice: str) -> None:
    model = ScriptedChatModel(calls(("s1", "calculator", {"expression": "2"})), text("4"))
    await run(model, TurnOptions(client_tools=(WEATHER,), tool_choice=choice))
    assert [r.tool_choice for r in model.requests] == [choice, None]
    assert len(model.requests[1].tools) == 2  # still offered, no longer forced


def test_offer_refuses_a_client_tool_named_like_a_server_tool() -> None:
    clash = TurnOptions(client_tools=(ToolSpec("calculator", "mine"),))
    with pytest.raises(InvalidRequest) as caught:
        clash.offer(SERVER)
    assert caught.value.param == "tools"


def test_offer_refuses_a_named_choice_nothing_offers() -> None:
    with pytest.raises(InvalidRequest) as caught:
        TurnOptions(client_tools=(WEATHER,), tool_choice="get_time").offer(SERVER)
    assert caught.value.param == "tool_choice"
    assert [t.name for t in TurnOptions(tool_choice="calculator").offer(SERVER)] == ["calculator"]


def test_client_tools_named_twice_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        TurnOptions(client_tools=(WEATHER, WEATHER))
    assert caught.value.param == "tools"


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (None, None),
        ("required", "required"),
        ("none", "none"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_the_upstream_body_carries_tool_choice_and_strict(choice: str | None, wire: object) -> None:
    strict = ToolSpec("get_weather", "w", {"type": "object"}, strict=True)
    request = ChatRequest(
        model="m", messages=(ChatMessage.user("hi"),), tools=(strict,), tool_choice=choice
    )
    body = request_body(request, stream=False)
    assert body.get("tool_choice") == wire
    assert body["tools"][0]["function"]["strict"] is True


def test_the_wire_request_becomes_turn_options() -> None:
    body = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": {"type": "object"}},
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
        }
    )
    options = body.turn_options()
    assert options.client_tools == (ToolSpec("get_weather", "", {"type": "object"}),)
    assert options.tool_choice == "get_weather"
    assert options.upstream == {"parallel_tool_calls": False}
    plain = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    ).turn_options()
    assert (plain.client_tools, plain.tool_choice, dict(plain.upstream)) == ((), "auto", {})
