"""The agent graph: router -> think -> act -> observe -> think ... -> respond | approval.

Built once per process from its collaborators; everything about one run (who, which
conversation, which tools, where to record) travels in the run's `RunContext`. There is no
checkpointer: a pause for approval ends the run with the pending calls recorded in our tables,
and the approval starts a new run that enters at `act`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict
from uuid import UUID

import anyio
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent_api.application.agent.context import ContextWindow, fit_to_window
from agent_api.application.agent.events import (
    ApprovalRequired,
    ContentDelta,
    LLMCallFinished,
    MessageStored,
    ToolCallRequested,
    ToolFinished,
)
from agent_api.application.agent.router import SYSTEM_PROMPTS, resolve_agent
from agent_api.application.ports import ChatModel
from agent_api.domain.chat import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from agent_api.domain.conversations import AgentType, DecidedToolCall, Message, PendingToolCall
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import AppError, UpstreamFailed
from agent_api.tools.outcome import ToolOutcome

STEP_LIMIT_CODE = "TOOL_CALL_LIMIT"
ITERATION_LIMIT_NOTE = (
    "The tool-call limit for this turn has been reached. Do not call tools; answer now with "
    "what you have, and say what is still missing."
)


class AgentTools(Protocol):
    """What the agent needs of the tool system."""

    def approval_reason(self, name: str) -> str | None:
        """Why a call of tool `name` needs approval; None when it does not."""

    def check(self, principal: Principal, call: ToolCall) -> dict[str, Any]:
        """The call's parsed, schema-valid arguments. Raises AppError (unknown tool,
        forbidden tool, invalid arguments) with a message the model can act on."""

    async def run(self, principal: Principal, call: ToolCall, conversation_id: UUID) -> ToolOutcome:
        """Runs and records one call; tool errors are outcomes, never exceptions."""

    async def run_approved(
        self, principal: Principal, decided: DecidedToolCall, conversation_id: UUID
    ) -> ToolOutcome | None:
        """Runs an approved call with its effective arguments, exactly once: None when it
        already ran."""


class RunRecorder(Protocol):
    """Where a run writes what it produces (the conversation's tables)."""

    async def assistant(
        self,
        result: ChatResult,
        calls: Sequence[ToolCall],
        latency_ms: int,
        complete: bool = True,
        *,
        context_dropped: int = 0,
    ) -> Message: ...

    async def tool_result(self, outcome: ToolOutcome) -> Message: ...

    async def request_approval(
        self, requests: Sequence[tuple[ToolCall, dict[str, Any], str]]
    ) -> list[PendingToolCall]: ...


@dataclass(frozen=True, slots=True)
class RunContext:
    principal: Principal
    conversation_id: UUID
    model: str
    tools: tuple[ToolSpec, ...]
    stream: bool
    recorder: RunRecorder


class AgentState(TypedDict, total=False):
    history: list[ChatMessage]
    user_message: str
    fixed_agent: AgentType
    agent: AgentType
    pending: list[ToolCall]
    approved: list[DecidedToolCall]
    awaiting: list[tuple[ToolCall, dict[str, Any], str]]
    iteration: int
    tools_off: bool
    outcome: Literal["answered", "pending_approval"]


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

    async def router(state: AgentState) -> AgentState:
        fixed = state.get("fixed_agent", AgentType.AUTO)
        return {"agent": resolve_agent(fixed, state.get("user_message", ""))}

    async def think(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        ctx, write = runtime.context, runtime.stream_writer
        tools_off = state.get("tools_off", False)
        system = [ChatMessage(role="system", content=SYSTEM_PROMPTS[state["agent"]])]
        if tools_off:
            system.append(ChatMessage(role="system", content=ITERATION_LIMIT_NOTE))
        offered = () if tools_off else ctx.tools
        history, dropped = await _fit(context_window, ctx.model, system, state["history"], offered)
        request = ChatRequest(model=ctx.model, messages=(*system, *history), tools=offered)
        started = time.perf_counter()
        if ctx.stream:
            result = await _stream_answer(chat_model, request, ctx, write, dropped)
        else:
            result = await chat_model.complete(request)
        latency_ms = int((time.perf_counter() - started) * 1000)
        calls = () if tools_off else result.message.tool_calls
        stored = await ctx.recorder.assistant(result, calls, latency_ms, context_dropped=dropped)
        write(
            LLMCallFinished(
                model=result.model, usage=result.usage, finish_reason=result.finish_reason
            )
        )
        write(MessageStored(stored))
        # The calls as stored: what the model wrote is made storable there (an over-long id is
        # cut), and the results must answer the ids the history and the client see.
        calls = stored.tool_calls
        for call in calls:
            write(ToolCallRequested(call))
        return {"history": [*state["history"], stored.to_chat()], "pending": list(calls)}

    async def act(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        ctx, write = runtime.context, runtime.stream_writer
        awaiting: list[tuple[ToolCall, dict[str, Any], str]] = []
        jobs: list[Awaitable[ToolOutcome | None]] = []
        asked = state.get("pending", [])
        for call in asked[:max_tool_calls_per_step]:
            reason = tools.approval_reason(call.name)
            if reason is not None:
                try:
                    awaiting.append((call, tools.check(ctx.principal, call), reason))
                    continue
                except AppError:
                    pass  # not approvable as asked: run() records the error for the model
            jobs.append(tools.run(ctx.principal, call, ctx.conversation_id))
        jobs.extend(
            tools.run_approved(ctx.principal, decided, ctx.conversation_id)
            for decided in state.get("approved", [])
        )
        history = list(state["history"])
        limit = asyncio.Semaphore(max_concurrent_tools)

        async def bounded(job: Awaitable[ToolOutcome | None]) -> ToolOutcome | None:
            async with limit:
                return await job

        outcomes = list(await asyncio.gather(*map(bounded, jobs)))
        outcomes.extend(
            _over_limit(call, max_tool_calls_per_step) for call in asked[max_tool_calls_per_step:]
        )
        for outcome in outcomes:
            if outcome is None:  # an approved call that already ran elsewhere
                continue
            stored = await ctx.recorder.tool_result(outcome)
            write(ToolFinished(outcome))
            write(MessageStored(stored))
            history.append(stored.to_chat())
        return {"history": history, "pending": [], "approved": [], "awaiting": awaiting}

    async def observe(state: AgentState) -> AgentState:
        iteration = state.get("iteration", 0) + 1
        return {"iteration": iteration, "tools_off": iteration >= max_iterations}

    async def approval(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        pending = await runtime.context.recorder.request_approval(state["awaiting"])
        runtime.stream_writer(ApprovalRequired(tuple(pending)))
        return {"awaiting": [], "outcome": "pending_approval"}

    async def respond(state: AgentState) -> AgentState:
        return {"outcome": "answered"}

    def after_start(state: AgentState) -> str:
        return "act" if state.get("approved") else "router"

    def after_think(state: AgentState) -> str:
        return "act" if state.get("pending") else "respond"

    def after_act(state: AgentState) -> str:
        return "approval" if state.get("awaiting") else "observe"

    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("router", router)
    graph.add_node("think", think)
    graph.add_node("act", act)
    graph.add_node("observe", observe)
    graph.add_node("approval", approval)
    graph.add_node("respond", respond)
    graph.add_conditional_edges(START, after_start, ["router", "act"])
    graph.add_edge("router", "think")
    graph.add_conditional_edges("think", after_think, ["act", "respond"])
    graph.add_conditional_edges("act", after_act, ["approval", "observe"])
    graph.add_edge("observe", "think")
    graph.add_edge("approval", END)
    graph.add_edge("respond", END)
    return graph.compile(name="agent")


def recursion_limit(max_iterations: int) -> int:
    """LangGraph steps a run may take: 4 per tool round (think, act, observe + approval) plus
    router, the final think and respond, with headroom. Never the binding limit."""
    return 4 * max_iterations + 10


async def _fit(
    context_window: Callable[[str], ContextWindow] | None,
    model: str,
    system: Sequence[ChatMessage],
    history: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
) -> tuple[Sequence[ChatMessage], int]:
    """The history a request to `model` carries and how many messages it leaves out. Counting
    is CPU work (a tokenizer's first use loads it), so it runs in a worker thread; counts of
    large messages are remembered by the counter, so later calls cost little.
    Raises ContextLengthExceeded."""
    if context_window is None:
        return history, 0
    window = context_window(model)
    fitted = await anyio.to_thread.run_sync(fit_to_window, window, system, history, tools)
    return fitted.messages, fitted.dropped


def _over_limit(call: ToolCall, limit: int) -> ToolOutcome:
    """The answer to a call beyond the per-step limit: not run, and the model is told why."""
    return ToolOutcome(
        tool_call_id=call.id,
        name=call.name,
        ok=False,
        error_code=STEP_LIMIT_CODE,
        error_message=f"not run: at most {limit} tool calls are run per answer "
        "(AGENT_MAX_TOOL_CALLS_PER_STEP); ask for the rest in a later answer if still needed",
    )


async def _stream_answer(
    chat_model: ChatModel, request: ChatRequest, ctx: RunContext, write: Any, dropped: int = 0
) -> ChatResult:
    """Streams one LLM call, forwarding text as it arrives. If the run is cancelled mid-answer
    (the client went away), what was generated is stored, marked incomplete, then the
    cancellation goes on."""
    parts: list[str] = []
    started = time.perf_counter()
    try:
        async for event in chat_model.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
                write(ContentDelta(event.text))
            elif isinstance(event, StreamEnd):
                return event.result
    except (asyncio.CancelledError, GeneratorExit):
        if parts:
            partial = ChatResult(
                message=ChatMessage(role="assistant", content="".join(parts)),
                finish_reason="length",
                usage=_estimate_usage(request, parts),
                model=request.model,
            )
            latency_ms = int((time.perf_counter() - started) * 1000)
            with anyio.CancelScope(shield=True):
                await ctx.recorder.assistant(
                    partial, (), latency_ms, complete=False, context_dropped=dropped
                )
        raise
    raise UpstreamFailed("the model's stream ended without a final result")


def _estimate_usage(request: ChatRequest, parts: list[str]) -> Usage:
    """Upstreams report usage only at the end of a stream; for a cut-off answer we count
    roughly four characters per token so the spend is not lost."""
    prompt_chars = sum(
        len(m.content or "") + sum(len(c.arguments) for c in m.tool_calls) for m in request.messages
    )
    return Usage(
        prompt_tokens=prompt_chars // 4 + 1, completion_tokens=sum(map(len, parts)) // 4 + 1
    )
