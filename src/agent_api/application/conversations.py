"""Conversations: starting, continuing and approving agent runs, and reading history.

Every run holds its conversation's lease, renewed while it goes, and gives it back when it
ends however it ends (answered, paused for approval, failed, or cut off by a disconnect).
It holds a run slot (the cap on concurrent runs) the same way, taken before anything is
written: a run refused by the cap writes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

import anyio
import structlog

from agent_api.application.agent.events import (
    AgentEvent,
    ApprovalRequired,
    LLMCallFinished,
    MessageStored,
    RunFinished,
)
from agent_api.application.agent.graph import AgentGraph, recursion_limit
from agent_api.application.agent.recorder import ConversationRecorder
from agent_api.application.agent.router import resolve_agent
from agent_api.application.agent.state import AgentState, AgentTools, RunContext
from agent_api.application.models import ModelCatalog
from agent_api.application.ports import ConversationRepository, UsageRepository
from agent_api.application.run_slots import RunSlot, RunSlotService
from agent_api.domain.chat import ChatMessage, ToolSpec, Usage
from agent_api.domain.conversations import (
    AgentType,
    ApprovalRequest,
    Conversation,
    ConversationStatus,
    DecidedToolCall,
    Message,
    PendingToolCall,
    make_title,
    repair_history,
)
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import (
    ConversationBusy,
    InvalidRequest,
    NotFound,
    NotPendingApproval,
)

log = structlog.get_logger("agent_api.runs")


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: Conversation
    messages: list[Message]
    pending: list[PendingToolCall]


@dataclass(frozen=True, slots=True)
class RunEngine:
    """What every run needs: the compiled graph, and the conversation lease it holds."""

    graph: AgentGraph
    repo: ConversationRepository
    clock: Callable[[], datetime]
    lease: timedelta
    max_iterations: int

    async def release(
        self, conversation_id: UUID, run_id: UUID, status: ConversationStatus
    ) -> Conversation | None:
        """Ends the run's claim with `status`, even when the caller is being cancelled."""
        with anyio.CancelScope(shield=True):
            finished = await self.repo.finish_run(conversation_id, run_id, status, self.clock())
        return finished  # noqa: RET504 (a cancel scope may swallow; mypy needs the return here)


class ConversationService:
    def __init__(
        self,
        repo: ConversationRepository,
        graph: AgentGraph,
        tools: AgentTools,
        tool_specs: Callable[[Principal], tuple[ToolSpec, ...]],
        models: ModelCatalog,
        usage: UsageRepository,
        clock: Callable[[], datetime],
        max_iterations: int,
        lease: timedelta = timedelta(seconds=60),
        run_slots: RunSlotService | None = None,
    ) -> None:
        self._repo = repo
        self._run_slots = run_slots
        self._engine = RunEngine(graph, repo, clock, lease, max_iterations)
        self._tools = tools
        self._tool_specs = tool_specs
        self.models = models
        self._usage = usage
        self._now = clock
        self._lease = lease

    # --- starting runs -------------------------------------------------------------------

    async def start(
        self,
        principal: Principal,
        history: Sequence[ChatMessage],
        *,
        agent_type: AgentType = AgentType.AUTO,
        model: str | None = None,
        title: str | None = None,
        stream: bool = False,
    ) -> Run:
        """A new conversation from `history` (its last message is the user's turn), and the
        run that answers it. Raises InvalidRequest, ModelNotFound, ModelForbidden,
        RateLimited (too many runs in progress). When the
        history cannot be stored, the new conversation is marked `failed` before raising."""
        if not history or history[-1].role != "user" or not history[-1].content:
            raise InvalidRequest(
                "the last message must be a non-empty user message", param="messages"
            )
        resolved = self.models.resolve(principal, model)
        now, run_id = self._now(), uuid.uuid4()
        conversation = Conversation(
            id=uuid.uuid4(),
            user_id=principal.user.id,
            title=make_title(title or history[-1].content or ""),
            status=ConversationStatus.RUNNING,
            agent_type=agent_type,
            model=resolved,
            created_at=now,
            updated_at=now,
            run_id=run_id,
            lease_expires_at=now + self._lease,
        )
        slot = await self._take_slot(principal)
        try:
            await self._repo.create(conversation)
        except BaseException:
            await slot.release()
            raise
        try:
            stored = await self._store_all(conversation.id, history)
        except BaseException:
            # Hand the conversation back at once rather than when the lease runs out. `failed`,
            # not `active`: part of the history may be missing, and the list should say so.
            try:
                await self._engine.release(conversation.id, run_id, ConversationStatus.FAILED)
            finally:
                await slot.release()
            raise
        return self._run(
            principal,
            conversation,
            run_id,
            stream,
            new=stored,
            history=[m.to_chat() for m in stored],
            user_message=history[-1].content or "",
            slot=slot,
        )

    async def send(
        self,
        principal: Principal,
        conversation_id: UUID,
        message: str,
        *,
        model: str | None = None,
        stream: bool = False,
    ) -> Run:
        """The next user turn of a conversation, answered by `model` (default: the
        conversation's). Raises NotFound, ConversationBusy (a run is in progress or an approval
        is pending), ModelNotFound, ModelForbidden, RateLimited (too many runs in progress)."""
        slot = await self._take_slot(principal)
        try:
            conversation, run_id = await self._claim(principal, conversation_id)
        except BaseException:
            await slot.release()
            raise
        try:
            model = self.models.resolve(principal, model or conversation.model)
            user = await self._repo.append_message(
                conversation.id, "user", self._now(), content=message
            )
            history = await self._history(conversation.id)
        except BaseException:
            try:
                await self._engine.release(conversation.id, run_id, ConversationStatus.ACTIVE)
            finally:
                await slot.release()
            raise
        return self._run(
            principal,
            conversation,
            run_id,
            stream,
            new=[user],
            history=history,
            user_message=message,
            model=model,
            slot=slot,
        )

    async def approve(
        self,
        principal: Principal,
        conversation_id: UUID,
        request: ApprovalRequest,
        *,
        stream: bool = False,
    ) -> Run:
        """`_approve` within a run slot: RateLimited when too many runs are in progress;
        the slot is released if the approval fails before its run exists."""
        slot = await self._take_slot(principal)
        try:
            run = await self._approve(principal, conversation_id, request, stream=stream)
        except BaseException:
            await slot.release()
            raise
        run.hold(slot)
        return run

    async def _approve(
        self,
        principal: Principal,
        conversation_id: UUID,
        request: ApprovalRequest,
        *,
        stream: bool = False,
    ) -> Run:
        """Decides the pending calls and resumes the run at `act`: approved calls run (with
        edited arguments), rejected ones answer the model with the rejection. Exactly one of
        concurrent approvals wins; the others get NotPendingApproval.

        Raises NotFound, ModelForbidden, ApprovalForbidden (an API key without
        `can_approve`), ToolForbidden (a pending call's tool the credential may not use):
        these are checked before the decision is claimed, so the calls stay pending."""
        current = await self._repo.get(conversation_id, principal.user.id)
        if current is None:
            raise NotFound("conversation not found")
        principal.credential.require_model(current.model)
        pending = await self._repo.pending_approvals(conversation_id)
        principal.credential.require_approval_rights(call.name for call in pending)
        run_id = uuid.uuid4()
        decided = await self._repo.claim_approval(
            conversation_id, principal.user.id, run_id, request, self._now(), self._lease
        )
        if decided is None:
            raise NotPendingApproval()
        # What the claim just wrote; no need to read it back.
        conversation = replace(current, status=ConversationStatus.RUNNING, run_id=run_id)
        try:
            new = []
            for item in decided:
                if not item.decision.approved:
                    reason = item.decision.reason or "no reason given"
                    new.append(
                        await self._repo.append_message(
                            conversation_id,
                            "tool",
                            self._now(),
                            content=json.dumps({"error": f"rejected by the user: {reason}"}),
                            tool_call_id=item.pending.tool_call_id,
                            name=item.pending.name,
                        )
                    )
            approved = [item for item in decided if item.decision.approved]
            history = await self._history(
                conversation_id, [item.pending.tool_call_id for item in approved]
            )
        except BaseException:
            await self._engine.release(conversation_id, run_id, ConversationStatus.FAILED)
            raise
        last_user = next((m.content or "" for m in reversed(history) if m.role == "user"), "")
        return self._run(
            principal,
            conversation,
            run_id,
            stream,
            new=new,
            history=history,
            user_message=last_user,
            approved=approved,
        )

    # --- reading ---------------------------------------------------------------------------

    async def get(self, principal: Principal, conversation_id: UUID) -> ConversationView:
        conversation = await self._repo.get(conversation_id, principal.user.id)
        if conversation is None:
            raise NotFound("conversation not found")
        messages = await self._repo.messages(conversation_id)
        pending = await self._repo.pending_approvals(conversation_id)
        return ConversationView(conversation, messages, pending)

    async def page(
        self,
        principal: Principal,
        *,
        limit: int,
        cursor: str | None = None,
        status: ConversationStatus | None = None,
    ) -> tuple[list[Conversation], str | None]:
        """A page, newest first, and the cursor of the next page (None on the last)."""
        before = _decode_cursor(cursor) if cursor else None
        page = await self._repo.list_for_user(
            principal.user.id, limit=limit + 1, before=before, status=status
        )
        if len(page) <= limit:
            return page, None
        page = page[:limit]
        return page, _encode_cursor(page[-1])

    async def delete(self, principal: Principal, conversation_id: UUID) -> None:
        if not await self._repo.delete(conversation_id, principal.user.id, self._now()):
            raise NotFound("conversation not found")

    async def count_pending_approvals(self) -> int:
        return await self._repo.count_pending_approvals()

    async def fail_expired_runs(self) -> int:
        """Marks `failed` the runs whose process died (their lease ran out)."""
        count = await self._repo.fail_expired_runs(self._now())
        if count:
            log.warning("interrupted runs marked failed", count=count)
        return count

    # --- internals -------------------------------------------------------------------------

    async def _claim(
        self, principal: Principal, conversation_id: UUID
    ) -> tuple[Conversation, UUID]:
        run_id = uuid.uuid4()
        claimed = await self._repo.claim_run(
            conversation_id, principal.user.id, run_id, self._now(), self._lease
        )
        if claimed is not None:
            return claimed, run_id
        current = await self._repo.get(conversation_id, principal.user.id)
        if current is None:
            raise NotFound("conversation not found")
        if current.status is ConversationStatus.PENDING_APPROVAL:
            raise ConversationBusy("the conversation is waiting for an approval decision")
        raise ConversationBusy("a run is in progress on this conversation")

    async def _take_slot(self, principal: Principal) -> RunSlot:
        """Raises RateLimited when the principal has too many runs in progress."""
        if self._run_slots is None:
            return RunSlot(None, "", [], self._lease)
        return await self._run_slots.acquire(principal)

    async def _store_all(
        self, conversation_id: UUID, history: Sequence[ChatMessage]
    ) -> list[Message]:
        stored = []
        for message in history:
            stored.append(
                await self._repo.append_message(
                    conversation_id,
                    message.role,
                    self._now(),
                    content=message.content,
                    tool_calls=message.tool_calls,
                    tool_call_id=message.tool_call_id,
                    name=message.name,
                )
            )
        return stored

    async def _history(
        self, conversation_id: UUID, resuming: Sequence[str] = ()
    ) -> list[ChatMessage]:
        stored = await self._repo.messages(conversation_id)
        return repair_history([m.to_chat() for m in stored], resuming)

    def _run(
        self,
        principal: Principal,
        conversation: Conversation,
        run_id: UUID,
        stream: bool,
        *,
        new: list[Message],
        history: list[ChatMessage],
        user_message: str,
        approved: list[DecidedToolCall] | None = None,
        model: str | None = None,
        slot: RunSlot | None = None,
    ) -> Run:
        recorder = ConversationRecorder(
            self._repo, self._usage, principal, conversation.id, self._now
        )
        context = RunContext(
            principal=principal,
            conversation_id=conversation.id,
            model=model or conversation.model,
            tools=self._tool_specs(principal),
            stream=stream,
            recorder=recorder,
        )
        state: AgentState = {
            "history": history,
            "user_message": user_message,
            "fixed_agent": conversation.agent_type,
            "agent": resolve_agent(conversation.agent_type, user_message),
            "approved": approved or [],
            "iteration": 0,
        }
        run = Run(self._engine, conversation, run_id, context, state, new)
        if slot is not None:
            run.hold(slot)
        return run


class Run:
    """One agent run on a claimed conversation. Iterate `events()` once; the last event is
    `RunFinished`. Closing the iterator early (client gone) keeps what was generated, marked
    incomplete, and hands the conversation back."""

    def __init__(
        self,
        engine: RunEngine,
        conversation: Conversation,
        run_id: UUID,
        context: RunContext,
        state: AgentState,
        new: list[Message],
    ) -> None:
        self._engine = engine
        self.conversation = conversation
        self.run_id = run_id
        self._context = context
        self._state = state
        self._new = new
        self._slot: RunSlot | None = None

    def hold(self, slot: RunSlot) -> None:
        """The run slot this run renews with its lease and releases when it ends."""
        self._slot = slot

    async def events(self) -> AsyncGenerator[AgentEvent, None]:
        engine = self._engine
        messages = list(self._new)
        usage = Usage()
        pending: tuple[PendingToolCall, ...] = ()
        finish_reason = "stop"
        status = ConversationStatus.FAILED
        heartbeat = asyncio.create_task(self._keep_lease())
        try:
            for message in self._new:
                yield MessageStored(message)
            stream = cast(
                AsyncGenerator[AgentEvent, None],
                engine.graph.astream(
                    self._state,
                    context=self._context,
                    stream_mode="custom",
                    config={"recursion_limit": recursion_limit(engine.max_iterations)},
                ),
            )
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, MessageStored):
                        messages.append(event.message)
                    elif isinstance(event, LLMCallFinished):
                        usage = usage + event.usage
                        finish_reason = event.finish_reason
                    elif isinstance(event, ApprovalRequired):
                        pending = event.pending
                    yield event
            status = ConversationStatus.PENDING_APPROVAL if pending else ConversationStatus.ACTIVE
        except (asyncio.CancelledError, GeneratorExit):
            status = ConversationStatus.ACTIVE  # the client left; the conversation stays usable
            raise
        finally:
            heartbeat.cancel()
            try:
                final = await engine.release(self.conversation.id, self.run_id, status)
            finally:
                if self._slot is not None:
                    await self._slot.release()
        final_text = next(
            (m.content or "" for m in reversed(messages) if m.role == "assistant"), ""
        )
        yield RunFinished(
            conversation=final or self.conversation,
            usage=usage,
            messages=tuple(messages),
            pending=pending,
            final_text=final_text,
            finish_reason="tool_calls"
            if pending
            else ("stop" if finish_reason == "tool_calls" else finish_reason),
        )

    async def result(self) -> RunFinished:
        """Runs to the end and returns the final event."""
        finished = None
        async for event in self.events():
            if isinstance(event, RunFinished):
                finished = event
        assert finished is not None
        return finished

    async def _keep_lease(self) -> None:
        engine = self._engine
        while True:
            await asyncio.sleep(engine.lease.total_seconds() / 3)
            until = engine.clock() + engine.lease
            with contextlib.suppress(Exception):  # a missed renewal is retried next time
                await engine.repo.renew_lease(self.conversation.id, self.run_id, until)
            if self._slot is not None:
                await self._slot.renew()  # never raises


def _final_finish_reason(pending: tuple[PendingToolCall, ...], last_llm_reason: str) -> str:
    """`tool_calls` only when the client must act (an approval); otherwise the last LLM call's
    reason, where a server-side tool round that ended the run counts as `stop`."""
    if pending:
        return "tool_calls"
    return "stop" if last_llm_reason == "tool_calls" else last_llm_reason


def _encode_cursor(conversation: Conversation) -> str:
    raw = f"{conversation.updated_at.isoformat()}|{conversation.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Raises InvalidRequest for a cursor this server did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("invalid cursor", param="cursor") from None
