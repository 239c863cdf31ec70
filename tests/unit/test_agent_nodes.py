"""The agent graph's routers and state-only nodes, each on its own."""

from __future__ import annotations

from agent_api.application.agent.nodes import after_act, after_router, after_think, observe
from agent_api.application.agent.state import AgentDeps
from agent_api.domain.chat import ToolCall
from tests.unit.agent_fakes import FakeTools, ScriptedChatModel

CALL = ToolCall(id="c1", name="calculator", arguments="{}")


def test_a_resumed_run_enters_at_act() -> None:
    assert after_router({"approved": []}) == "think"
    assert after_router({"approved": [object()]}) == "act"  # type: ignore[list-item]


def test_think_goes_to_act_only_with_calls() -> None:
    assert after_think({"pending": [CALL]}) == "act"
    assert after_think({"pending": []}) == "respond"


def test_act_pauses_when_a_call_awaits_approval() -> None:
    assert after_act({"awaiting": [(CALL, {}, "writes files")]}) == "approval"
    assert after_act({}) == "observe"


async def test_observe_turns_tools_off_at_the_iteration_limit() -> None:
    deps = AgentDeps(ScriptedChatModel(), FakeTools(), max_iterations=2, max_concurrent_tools=1)
    assert await observe(deps, {"iteration": 0}) == {"iteration": 1, "tools_off": False}
    assert await observe(deps, {"iteration": 1}) == {"iteration": 2, "tools_off": True}
