"""The agent graph: router -> think -> act -> observe -> think ... -> respond | approval |
client_tools.

Built once per process from its collaborators (`AgentDeps`); everything about one run (who,
which conversation, which tools, where to record) travels in the run's `RunContext`. There is
no checkpointer: a pause for approval ends the run with the pending calls recorded in our
tables, and the approval starts a new run that goes from `router` to `act`. Likewise a call of
one of the client's own tools (offered beside the server's, never run here) ends the run after
the step's server calls ran; the client's results start a new run at `think`. A step calling
both client tools and tools needing an approval answers the latter "deferred"
(APPROVAL_DEFERRED): one pause at a time, and the model may call them again on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent_api.application.agent.context import ContextWindow
from agent_api.application.agent.nodes import (
    act,
    after_act,
    after_router,
    after_think,
    approval,
    client_tools,
    observe,
    respond,
    router,
    think,
)
from agent_api.application.agent.state import AgentDeps, AgentState, AgentTools, RunContext
from agent_api.application.ports import ChatModel

AgentGraph = CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]


def build_agent_graph(
    chat_model: ChatModel,
    tools: AgentTools,
    max_iterations: int,
    max_concurrent_tools: int,
    context_window: Callable[[str], ContextWindow] | None = None,
    *,
    max_tool_calls_per_step: int = 32,
) -> AgentGraph:
    """Compiles the graph. Nodes write `AgentEvent`s to the custom stream as they happen.
    `think` fits each request to `context_window(model)` (no budget when None) and raises
    ContextLengthExceeded, before calling the model, when the last turn cannot fit. `act` runs
    at most `max_concurrent_tools` of a round's calls at once, and only the first
    `max_tool_calls_per_step` calls of one model answer: each extra call is answered with a
    TOOL_CALL_LIMIT result, so every call in the history has its answer."""
    deps = AgentDeps(
        chat_model,
        tools,
        max_iterations,
        max_concurrent_tools,
        context_window,
        max_tool_calls_per_step,
    )
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("router", router)
    graph.add_node("think", partial(think, deps))
    graph.add_node("act", partial(act, deps))
    graph.add_node("observe", partial(observe, deps))
    graph.add_node("approval", approval)
    graph.add_node("client_tools", client_tools)
    graph.add_node("respond", respond)
    graph.add_edge(START, "router")
    graph.add_conditional_edges("router", after_router, ["think", "act"])
    graph.add_conditional_edges("think", after_think, ["act", "respond"])
    graph.add_conditional_edges("act", after_act, ["client_tools", "approval", "observe"])
    graph.add_edge("observe", "think")
    graph.add_edge("approval", END)
    graph.add_edge("client_tools", END)
    graph.add_edge("respond", END)
    return graph.compile(name="agent")


def recursion_limit(max_iterations: int) -> int:
    """LangGraph steps a run may take: 4 per tool round (think, act, observe + approval) plus
    router, the final think and respond, with headroom. Never the binding limit."""
    return 4 * max_iterations + 10
