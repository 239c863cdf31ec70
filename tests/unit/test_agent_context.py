"""The agent's `think` fits every request to the model's context window: old turns left out
and the count recorded on the answer, the current run kept whole, a last turn that cannot fit
refused before the model is called."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agent_api.application.agent.context import ContextWindow
from agent_api.application.agent.graph import build_agent_graph, recursion_limit
from agent_api.application.agent.state import AgentState, RunContext
from agent_api.domain.chat import ChatMessage, ToolSpec
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import ContextLengthExceeded
from agent_api.domain.users import Role, User
from tests.unit.agent_fakes import FakeTools, MemoryRecorder, ScriptedChatModel, calls, text
from tests.unit.fakes import FakeTokenCounter

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRINCIPAL = Principal(
    user=User(uuid.uuid4(), "a@b.c", "A", Role.USER, True, "x", NOW, NOW),
    credential=Credential(CredentialType.SESSION, uuid.uuid4()),
)
TOOLS = (ToolSpec("calculator", "math", {"type": "object"}),)
OLD = [ChatMessage.user("o" * 300), ChatMessage.assistant("a" * 300)]
QUESTION = ChatMessage.user("what is 6*7?")


async def run(model: ScriptedChatModel, history: list[ChatMessage], tokens: int) -> MemoryRecorder:
    recorder = MemoryRecorder()
    counter = FakeTokenCounter()
    graph = build_agent_graph(
        model,
        FakeTools(),
        max_iterations=5,
        max_concurrent_tools=2,
        context_window=lambda model: ContextWindow(tokens, reserve=50, counter=counter),
    )
    context = RunContext(PRINCIPAL, uuid.uuid4(), "fake", TOOLS, False, recorder)
    state: AgentState = {"history": history, "user_message": "", "iteration": 0}
    async for _ in graph.astream(
        state, context=context, stream_mode="custom", config={"recursion_limit": recursion_limit(5)}
    ):
        pass
    return recorder


async def test_old_turns_are_left_out_and_the_run_stays_whole() -> None:
    model = ScriptedChatModel(calls(("c1", "calculator", {"expression": "6*7"})), text("42"))
    # Room for the system prompt, the question and this run's call and result; not for OLD.
    recorder = await run(model, [*OLD, QUESTION], tokens=600)
    first, second = (request.messages for request in model.requests)
    assert [m.role for m in first] == ["system", "user"]
    assert first[1] == QUESTION
    assert [m.role for m in second] == ["system", "user", "assistant", "tool"]
    assert [m.context_dropped for m in recorder.messages if m.role == "assistant"] == [2, 2]


async def test_everything_goes_when_it_fits() -> None:
    model = ScriptedChatModel(text("hi"))
    recorder = await run(model, [*OLD, QUESTION], tokens=10_000)
    assert model.requests[0].messages[1:] == (*OLD, QUESTION)
    assert recorder.messages[0].context_dropped == 0


async def test_a_last_turn_that_cannot_fit_never_reaches_the_model() -> None:
    model = ScriptedChatModel(text("never"))
    with pytest.raises(ContextLengthExceeded):
        await run(model, [*OLD, ChatMessage.user("q" * 1000)], tokens=600)
    assert model.requests == []
