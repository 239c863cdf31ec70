"""The agent graph's nodes and routers, at module level so each can be tested alone. A node
takes the state (and the run's `RunContext`; the process-wide `AgentDeps` first where it needs
them) and returns the state's changes; it writes `AgentEvent`s to the custom stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import anyio
from langgraph.runtime import Runtime

from agent_api.application.agent.context import ContextWindow, fit_to_window
from agent_api.application.agent.events import (
    ApprovalRequired,
    ClientToolsRequired,
    ContentDelta,
    LLMCallFinished,
    MessageStored,
    ToolCallRequested,
    ToolFinished,
)
from agent_api.application.agent.router import SYSTEM_PROMPTS, resolve_agent
from agent_api.application.agent.state import AgentDeps, AgentState, AgentTools, RunContext
from agent_api.application.ports import ChatModel
from agent_api.domain.chat import (
    LENGTH_FIELDS,
    ChatMessage,
    ChatRequest,
    ChatResult,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolSpec,
    TurnOptions,
    Usage,
)
from agent_api.domain.conversations import AgentType
from agent_api.domain.errors import AppError, UpstreamFailed
from agent_api.tools.outcome import ToolOutcome

STEP_LIMIT_CODE = "TOOL_CALL_LIMIT"
DEFERRED_CODE = "APPROVAL_DEFERRED"
ITERATION_LIMIT_NOTE = (
    "The tool-call limit for this turn has been reached. Do not call tools; answer now with "
    "what you have, and say what is still missing."
)


async def router(state: AgentState) -> AgentState:
    """The agent that answers: the conversation's own, or the one its user turn calls for."""
    fixed = state.get("fixed_agent", AgentType.AUTO)
    return {"agent": resolve_agent(fixed, state.get("user_message", ""))}


async def think(deps: AgentDeps, state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    """One model call on the history; stores the answer and hands its tool calls to `act`."""
    ctx, write = runtime.context, runtime.stream_writer
    tools_off = state.get("tools_off", False)
    system = [ChatMessage(role="system", content=SYSTEM_PROMPTS[state["agent"]])]
    if tools_off:
        system.append(ChatMessage(role="system", content=ITERATION_LIMIT_NOTE))
    offered, choice = _offer(ctx, state)
    history, dropped = await _fit(deps.context_window, ctx.model, system, state["history"], offered)
    spent = state.get("completion_tokens", 0)
    request = ChatRequest(
        model=ctx.model,
        messages=(*system, *history),
        tools=offered,
        tool_choice=choice,
        options=call_options(ctx.options, spent),
    )
    result, latency_ms = await _call_model(deps.chat_model, request, ctx, write, dropped)
    spent += result.usage.completion_tokens
    # A tool round the budget cannot follow with an answer ends the run here, its calls
    # (likely cut short) not stored: the history never holds a call without its result.
    out_of_budget = bool(result.message.tool_calls) and budget_spent(ctx.options, spent)
    # Tools switched off (the iteration limit, or the client's "none"): a call is not run. A
    # call of a tool that simply is not offered (one the credential may not use) goes to `act`,
    # which answers it with an error the model can read.
    switched_off = tools_off or ctx.options.tool_choice == "none" or out_of_budget
    calls = () if switched_off else result.message.tool_calls
    stored = await ctx.recorder.assistant(result, calls, latency_ms, context_dropped=dropped)
    reason = "length" if out_of_budget else result.finish_reason
    write(LLMCallFinished(result.model, result.usage, reason, result.logprobs))
    write(MessageStored(stored))
    # The calls as stored: what the model wrote is made storable there (an over-long id is
    # cut), and the results must answer the ids the history and the client see.
    calls = stored.tool_calls
    for call in calls:
        write(ToolCallRequested(call))
    return {
        "history": [*state["history"], stored.to_chat()],
        "pending": list(calls),
        "completion_tokens": spent,
    }


async def _call_model(
    chat_model: ChatModel, request: ChatRequest, ctx: RunContext, write: Any, dropped: int
) -> tuple[ChatResult, int]:
    """The model's answer (streamed to the client when the run streams) and its latency."""
    started = time.perf_counter()
    if ctx.stream:
        result = await _stream_answer(chat_model, request, ctx, write, dropped)
    else:
        result = await chat_model.complete(request)
    return result, int((time.perf_counter() - started) * 1000)


def call_options(options: TurnOptions, spent: int) -> Mapping[str, Any]:
    """The fields a model call of the turn sends: the client's, with its length bound (in
    the field name the client used) lowered to what `spent` tokens leave of the turn's."""
    if options.max_completion_tokens is None:
        return options.upstream
    name = next((f for f in LENGTH_FIELDS if f in options.upstream), "max_tokens")
    return {**options.upstream, name: max(1, options.max_completion_tokens - spent)}


def budget_spent(options: TurnOptions, spent: int) -> bool:
    """True when the turn's completion tokens are used up (never without a budget)."""
    return options.max_completion_tokens is not None and spent >= options.max_completion_tokens


async def act(deps: AgentDeps, state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    """Runs the round's calls (and the approved ones of a resumed run), or sets aside those
    that need an approval; records every result."""
    ctx, write = runtime.context, runtime.stream_writer
    per_step = deps.max_tool_calls_per_step
    client = [c for c in state.get("pending", []) if ctx.options.is_client_tool(c.name)]
    asked = [c for c in state.get("pending", []) if not ctx.options.is_client_tool(c.name)]
    awaiting, jobs = _sort_calls(deps.tools, ctx, asked[:per_step])
    jobs.extend(
        deps.tools.run_approved(ctx.principal, decided, ctx.conversation_id)
        for decided in state.get("approved", [])
    )
    outcomes = await _gather_bounded(jobs, deps.max_concurrent_tools)
    outcomes.extend(_over_limit(call, per_step) for call in asked[per_step:])
    if client and awaiting:
        # One pause at a time: the client's calls end the turn, so the calls needing an
        # approval are answered "deferred" and the model may ask for them again later.
        outcomes.extend(_deferred(call) for call, _, _ in awaiting)
        awaiting = []
    history = list(state["history"])
    for outcome in outcomes:
        if outcome is None:  # an approved call that already ran elsewhere
            continue
        stored = await ctx.recorder.tool_result(outcome)
        write(ToolFinished(outcome))
        write(MessageStored(stored))
        history.append(stored.to_chat())
    return {
        "history": history,
        "pending": [],
        "approved": [],
        "awaiting": awaiting,
        "client_calls": client,
    }


async def observe(deps: AgentDeps, state: AgentState) -> AgentState:
    iteration = state.get("iteration", 0) + 1
    return {"iteration": iteration, "tools_off": iteration >= deps.max_iterations}


async def approval(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    pending = await runtime.context.recorder.request_approval(state["awaiting"])
    runtime.stream_writer(ApprovalRequired(tuple(pending)))
    return {"awaiting": []}


async def client_tools(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
    """Parks the run on the calls of the client's own tools: the client runs them and sends
    the results, which start the next run at `think`."""
    runtime.stream_writer(ClientToolsRequired(tuple(state["client_calls"])))
    return {"client_calls": []}


async def respond(state: AgentState) -> AgentState:
    return {}


def after_router(state: AgentState) -> Literal["think", "act"]:
    """A resumed run (approved calls to run) goes straight to `act`."""
    return "act" if state.get("approved") else "think"


def after_think(state: AgentState) -> Literal["act", "respond"]:
    return "act" if state.get("pending") else "respond"


def after_act(state: AgentState) -> Literal["client_tools", "approval", "observe"]:
    if state.get("client_calls"):
        return "client_tools"
    return "approval" if state.get("awaiting") else "observe"


def _offer(ctx: RunContext, state: AgentState) -> tuple[tuple[ToolSpec, ...], str | None]:
    """The tools one model call is offered and the `tool_choice` it is sent (None: the
    upstream's default, auto). No tools once the iteration limit is reached or when the
    client chose "none"; a forcing choice (required, a named function) binds only the turn's
    first call, so the model can then answer."""
    options = ctx.options
    if state.get("tools_off", False) or options.tool_choice == "none":
        return (), None
    first = state.get("iteration", 0) == 0
    choice = options.tool_choice if first and options.tool_choice != "auto" else None
    return (*ctx.tools, *options.client_tools), choice


def _sort_calls(
    tools: AgentTools, ctx: RunContext, calls: Sequence[ToolCall]
) -> tuple[list[tuple[ToolCall, dict[str, Any], str]], list[Awaitable[ToolOutcome | None]]]:
    """The calls to hold for an approval, and the jobs that run the others."""
    awaiting: list[tuple[ToolCall, dict[str, Any], str]] = []
    jobs: list[Awaitable[ToolOutcome | None]] = []
    for call in calls:
        reason = tools.approval_reason(call.name)
        if reason is not None:
            try:
                awaiting.append((call, tools.check(ctx.principal, call), reason))
                continue
            except AppError:
                pass  # not approvable as asked: run() records the error for the model
        jobs.append(tools.run(ctx.principal, call, ctx.conversation_id))
    return awaiting, jobs


async def _gather_bounded(
    jobs: Sequence[Awaitable[ToolOutcome | None]], limit: int
) -> list[ToolOutcome | None]:
    """The jobs' outcomes in order, at most `limit` running at once."""
    semaphore = asyncio.Semaphore(limit)

    async def bounded(job: Awaitable[ToolOutcome | None]) -> ToolOutcome | None:
        async with semaphore:
            return await job

    return list(await asyncio.gather(*map(bounded, jobs)))


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


def _deferred(call: ToolCall) -> ToolOutcome:
    """The answer to a call needing an approval made beside calls of the client's tools."""
    return ToolOutcome(
        tool_call_id=call.id,
        name=call.name,
        ok=False,
        error_code=DEFERRED_CODE,
        error_message="not run: it needs an approval, which cannot wait beside calls of the "
        "client's tools; call it again on its own if still needed",
    )


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
