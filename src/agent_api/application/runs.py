"""Run: one agent run on a claimed conversation, and the owner of that claim.

A run is opened holding its conversation's claim (status `running`, its `run_id`) and a run
slot. Entered (`async with run:`), it renews both leases while it goes; leaving, it gives both
back in one place, `__aexit__`, with the status the way it ended calls for:

- answered → `active`; paused for an approval → `pending_approval`; parked on calls of the
  client's own tools → `awaiting_tools`;
- failed → `failed`; cancelled or the client gone → `active` (the conversation stays usable);
- failed (or cancelled) while the turn's input was being stored → the status the opener
  chose (`Run.preparing`), since only it knows whether what was written is whole.

The same statement sets the conversation's fingerprint (`domain.fingerprints`). A run started
by a stateless request knows the head of the client's transcript (`request_head`): answered
or paused, the head extended with the answer the client is shown; failed or cut short, the
request's own head stays, so a retry of that request finds the conversation; when the turn's
input could not be stored, the head the conversation had before (`prior_head`: it still holds
that transcript and no more). Any other run clears it: the fingerprint always describes a
whole client transcript, or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, cast
from uuid import UUID

import anyio

from agent_api.application.agent.events import (
    AgentEvent,
    ApprovalRequired,
    ClientToolsRequired,
    LLMCallFinished,
    MessageStored,
    RunFinished,
)
from agent_api.application.agent.graph import AgentGraph, recursion_limit
from agent_api.application.agent.state import AgentState, RunContext
from agent_api.application.ports import ConversationRepository
from agent_api.application.run_slots import RunSlot
from agent_api.domain.chat import ToolCall, Usage
from agent_api.domain.conversations import (
    Conversation,
    ConversationStatus,
    Message,
    PendingToolCall,
)
from agent_api.domain.fingerprints import chain


@dataclass(frozen=True, slots=True)
class RunEngine:
    """What every run needs: the compiled graph, and the conversation lease it holds."""

    graph: AgentGraph
    repo: ConversationRepository
    clock: Callable[[], datetime]
    lease: timedelta
    max_iterations: int


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a prepared run executes: the graph's context and initial state, and the messages
    the turn already stored (reported first)."""

    context: RunContext
    state: AgentState
    new: list[Message]


@dataclass(slots=True)
class _Tally:
    """What the events said so far; the run's result is built from it."""

    messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    pending: tuple[PendingToolCall, ...] = ()
    client_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    logprobs: Any | None = None

    def add(self, event: AgentEvent) -> None:
        if isinstance(event, MessageStored):
            self.messages.append(event.message)
        elif isinstance(event, LLMCallFinished):
            self.usage = self.usage + event.usage
            self.finish_reason = event.finish_reason
            self.logprobs = event.logprobs
        elif isinstance(event, ApprovalRequired):
            self.pending = event.pending
        elif isinstance(event, ClientToolsRequired):
            self.client_calls = event.calls

    @property
    def parked(self) -> ConversationStatus:
        """The status a run that ended without an error leaves."""
        if self.client_calls:
            return ConversationStatus.AWAITING_TOOLS
        if self.pending:
            return ConversationStatus.PENDING_APPROVAL
        return ConversationStatus.ACTIVE


class Run:
    """One agent run on a claimed conversation. Iterate `events()` once (it enters the run);
    the last event is `RunFinished`. Closing the iterator early (client gone) keeps what was
    generated, marked incomplete, and hands the conversation back."""

    def __init__(
        self,
        engine: RunEngine,
        conversation: Conversation,
        run_id: UUID,
        slot: RunSlot,
        *,
        request_head: str | None = None,
        prior_head: str | None = None,
    ) -> None:
        self._engine = engine
        self._request_head = request_head
        self._prior_head = prior_head
        self.conversation = conversation
        self.run_id = run_id
        self._slot = slot
        self._plan: RunPlan | None = None
        self._tally = _Tally()
        self._heartbeat: asyncio.Task[None] | None = None
        self._final: Conversation | None = None

    @contextlib.asynccontextmanager
    async def preparing(self, on_failure: ConversationStatus) -> AsyncIterator[None]:
        """Around storing the turn's input: if that fails, the run ends at once (claim and
        slot released, the conversation left `on_failure`) rather than when its lease runs
        out, and the error goes on."""
        try:
            yield
        except BaseException:
            await self._release(on_failure, self._prior_head)
            raise

    def ready(self, plan: RunPlan) -> Run:
        """The run, prepared to execute `plan`."""
        self._plan = plan
        return self

    async def __aenter__(self) -> Run:
        self._heartbeat = asyncio.create_task(self._keep_lease())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = self._tally.parked
        elif issubclass(exc_type, asyncio.CancelledError | GeneratorExit):
            status = ConversationStatus.ACTIVE  # the client left; the conversation stays usable
        else:
            status = ConversationStatus.FAILED
        await self._release(status, self._fingerprint(answered=exc_type is None))

    async def events(self) -> AsyncGenerator[AgentEvent, None]:
        plan = self._plan
        assert plan is not None, "a run executes once prepared (Run.ready)"
        async with self:
            for message in plan.new:
                self._tally.add(MessageStored(message))
                yield MessageStored(message)
            stream = cast(
                AsyncGenerator[AgentEvent, None],
                self._engine.graph.astream(
                    plan.state,
                    context=plan.context,
                    stream_mode="custom",
                    config={"recursion_limit": recursion_limit(self._engine.max_iterations)},
                ),
            )
            async with contextlib.aclosing(stream):
                async for event in stream:
                    self._tally.add(event)
                    yield event
        yield self._finished()

    async def result(self) -> RunFinished:
        """Runs to the end and returns the final event."""
        finished = None
        async for event in self.events():
            if isinstance(event, RunFinished):
                finished = event
        assert finished is not None
        return finished

    def _finished(self) -> RunFinished:
        tally = self._tally
        final_text = next(
            (m.content or "" for m in reversed(tally.messages) if m.role == "assistant"), ""
        )
        plan = self._plan
        client_tools = plan is not None and bool(plan.context.options.client_tools)
        # `tool_calls` only when the client must act: its own tools' calls, or an approval
        # shown as calls (not to a client with tools of its own: it would try to run them).
        # A server-side tool round that ended the run (the iteration limit) counts as `stop`.
        reason = tally.finish_reason
        if tally.client_calls or (tally.pending and not client_tools):
            reason = "tool_calls"
        elif reason == "tool_calls":
            reason = "stop"
        return RunFinished(
            conversation=self._final or self.conversation,
            usage=tally.usage,
            messages=tuple(tally.messages),
            pending=tally.pending,
            final_text=final_text,
            finish_reason=reason,
            client_calls=tally.client_calls,
            client_tools=client_tools,
            logprobs=tally.logprobs,
        )

    def _fingerprint(self, answered: bool) -> str | None:
        """The conversation's fingerprint once this run ends (see the module's docstring)."""
        if self._request_head is None or not answered:
            return self._request_head
        return chain(self._request_head, self._finished().answer())

    async def _release(self, status: ConversationStatus, fingerprint: str | None) -> None:
        """Ends the claim with `status` and frees the slot, even when being cancelled."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        engine = self._engine
        try:
            with anyio.CancelScope(shield=True):
                self._final = await engine.repo.finish_run(
                    self.conversation.id,
                    self.run_id,
                    status,
                    engine.clock(),
                    fingerprint=fingerprint,
                )
        finally:
            await self._slot.release()

    async def _keep_lease(self) -> None:
        engine = self._engine
        while True:
            await asyncio.sleep(engine.lease.total_seconds() / 3)
            until = engine.clock() + engine.lease
            with contextlib.suppress(Exception):  # a missed renewal is retried next time
                await engine.repo.renew_lease(self.conversation.id, self.run_id, until)
            await self._slot.renew()  # never raises
