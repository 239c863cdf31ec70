"""Conversations: starting, continuing and approving agent runs.

Each of `start`, `send` and `approve` takes a run slot (the cap on concurrent runs) before
anything is written — a run refused by the cap writes nothing — then claims the conversation,
stores the turn's input and hands back the `Run`, which owns the claim and the slot from then
on (see `application.runs`). Reads live in `application.conversation_queries`.

`continue_or_start` serves requests that carry their whole transcript and no conversation id
(stateless clients): see `application.threads` for how the conversation is found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from agent_api.application.agent.graph import AgentGraph
from agent_api.application.agent.recorder import ConversationRecorder
from agent_api.application.agent.state import AgentState, RunContext
from agent_api.application.conversation_claims import ConversationClaims, freed_on_error
from agent_api.application.models import ModelCatalog
from agent_api.application.ports import ConversationRepository
from agent_api.application.run_slots import RunSlotService
from agent_api.application.runs import Run, RunEngine, RunPlan
from agent_api.application.threads import Step, find_thread
from agent_api.domain.chat import PLAIN_TURN, ChatMessage, ToolSpec, TurnOptions
from agent_api.domain.conversations import (
    AgentType,
    ApprovalRequest,
    Conversation,
    ConversationStatus,
    DecidedToolCall,
    Message,
    NewMessage,
    check_tool_results,
    make_title,
    open_tool_calls,
    repair_history,
)
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import DuplicateRequest, InvalidRequest

log = structlog.get_logger("agent_api.runs")


class ConversationService:
    def __init__(
        self,
        repo: ConversationRepository,
        graph: AgentGraph,
        tool_specs: Callable[[Principal], tuple[ToolSpec, ...]],
        models: ModelCatalog,
        clock: Callable[[], datetime],
        max_iterations: int,
        lease: timedelta = timedelta(seconds=60),
        run_slots: RunSlotService | None = None,
    ) -> None:
        self._repo = repo
        self._claims = ConversationClaims(repo, clock, lease, run_slots)
        self._engine = RunEngine(graph, repo, clock, lease, max_iterations)
        self._tool_specs = tool_specs
        self._models = models
        self._now = clock
        self._lease = lease

    async def start(
        self,
        principal: Principal,
        history: Sequence[ChatMessage],
        *,
        agent_type: AgentType = AgentType.AUTO,
        model: str | None = None,
        title: str | None = None,
        stream: bool = False,
        options: TurnOptions = PLAIN_TURN,
    ) -> Run:
        """A new conversation from `history` (its last message is the user's turn), and the
        run that answers it. Raises InvalidRequest, ModelNotFound, ModelForbidden,
        RateLimited (too many runs in progress); InvalidRequest too for `options` the model
        cannot be offered (see `TurnOptions.offer`). When the history cannot be stored, the
        new conversation is marked `failed` before raising."""
        return await self._start(
            principal, history, agent_type, model, title, stream, options, request_head=None
        )

    async def continue_or_start(
        self,
        principal: Principal,
        history: Sequence[ChatMessage],
        *,
        model: str | None = None,
        stream: bool = False,
        options: TurnOptions = PLAIN_TURN,
    ) -> Run:
        """The run answering a whole client transcript sent without a conversation id: the
        user's conversation it extends continues, storing only the new messages (user turns,
        or tool results for the calls it waits for); otherwise a new conversation stores it
        all. The same request while its run is going raises DuplicateRequest; once that run
        has failed or was cut short, the stored turn runs again, storing nothing twice.
        Raises what `start`, `send` and `submit_tool_results` raise."""
        last = history[-1] if history else None
        if (
            last is None
            or last.role not in ("user", "tool")
            or not (last.has_content or last.role == "tool")
        ):
            raise InvalidRequest(
                "the last message must be a non-empty user message", param="messages"
            )
        match = await find_thread(self._repo, principal.user.id, history)
        step = match.step(history)
        if step is Step.START:
            head = match.request_head
            return await self._start(
                principal, history, AgentType.AUTO, model, None, stream, options, request_head=head
            )
        conversation = match.conversation
        assert conversation is not None
        heads = {"request_head": match.request_head, "prior_head": conversation.fingerprint}
        new = history[match.known :]
        if step is Step.TOOL_RESULTS:
            return await self._resume_tools(
                principal, conversation.id, new, model, stream, options, **heads
            )
        if step is Step.RETRY:
            self._refuse_duplicate(conversation)
        return await self._continue(
            principal, conversation.id, new, model, stream, options, **heads
        )

    async def _start(
        self,
        principal: Principal,
        history: Sequence[ChatMessage],
        agent_type: AgentType,
        model: str | None,
        title: str | None,
        stream: bool,
        options: TurnOptions,
        *,
        request_head: str | None,
    ) -> Run:
        if not history or history[-1].role != "user" or not history[-1].has_content:
            raise InvalidRequest(
                "the last message must be a non-empty user message", param="messages"
            )
        options.offer(self._tool_specs(principal))
        resolved = self._models.resolve(principal, model)
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
            fingerprint=request_head,
        )
        slot = await self._claims.take_slot(principal)
        async with freed_on_error(slot):
            await self._repo.create(conversation)
        run = Run(self._engine, conversation, run_id, slot, request_head=request_head)
        # `failed`, not `active`: part of the history may be missing, and the list should say so.
        async with run.preparing(on_failure=ConversationStatus.FAILED):
            stored = await self._store_all(conversation.id, history)
        chat = [m.to_chat() for m in stored]
        turn = history[-1].content or ""
        return run.ready(self._plan(principal, run, stream, stored, chat, turn, options=options))

    async def send(
        self,
        principal: Principal,
        conversation_id: UUID,
        message: str,
        *,
        model: str | None = None,
        stream: bool = False,
        options: TurnOptions = PLAIN_TURN,
        parts: tuple[Mapping[str, Any], ...] = (),
    ) -> Run:
        """The next user turn of a conversation, answered by `model` (default: the
        conversation's); `parts`, the turn's content parts when it has more than text (see
        `ChatMessage.parts`; `message` is then their text). Raises NotFound, ConversationBusy
        (a run is in progress or an approval is pending), InvalidRequest (`options` that cannot
        be offered; the conversation waits for tool results instead), ModelNotFound,
        ModelForbidden, RateLimited (too many runs in progress)."""
        new = [ChatMessage("user", message, parts=parts)]
        return await self._continue(principal, conversation_id, new, model, stream, options)

    async def _continue(
        self,
        principal: Principal,
        conversation_id: UUID,
        new: Sequence[ChatMessage],
        model: str | None,
        stream: bool,
        options: TurnOptions,
        *,
        request_head: str | None = None,
        prior_head: str | None = None,
    ) -> Run:
        """`send` for the messages `new` (user and system ones, the last a user's; none when
        the stored turn runs again), stored in one round trip."""
        options.offer(self._tool_specs(principal))
        slot = await self._claims.take_slot(principal)
        async with freed_on_error(slot):
            claimed = await self._claims.claim(principal, conversation_id, fingerprint=request_head)
        run = Run(self._engine, *claimed, slot, request_head=request_head, prior_head=prior_head)
        async with run.preparing(on_failure=ConversationStatus.ACTIVE):
            model = self._models.resolve(principal, model or run.conversation.model)
            stored = await self._store_all(conversation_id, new)
            history = await self._history(conversation_id)
        if not new:
            history = _without_unseen_answer(history)
        turn = next((m.content or "" for m in reversed(history) if m.role == "user"), "")
        plan = self._plan(
            principal, run, stream, stored, history, turn, model=model, options=options
        )
        return run.ready(plan)

    def _refuse_duplicate(self, conversation: Conversation) -> None:
        """A retry of the request a live run is answering never starts a second run. (A run
        whose lease ran out died with its process: the retry takes it over.)"""
        lease = conversation.lease_expires_at
        if conversation.status is ConversationStatus.RUNNING and (
            lease is None or lease >= self._now()
        ):
            raise DuplicateRequest()

    async def submit_tool_results(
        self,
        principal: Principal,
        conversation_id: UUID,
        results: Sequence[ChatMessage],
        *,
        model: str | None = None,
        stream: bool = False,
        options: TurnOptions = PLAIN_TURN,
    ) -> Run:
        """The client's results for the calls of its tools the conversation waits for
        (`awaiting_tools`): stores them and runs on from `think` on the stored history.
        Raises NotFound (not the caller's), ConversationBusy (a run or an approval is in
        progress), InvalidRequest (param `messages`: the conversation waits for no results,
        or `results` do not answer exactly its open calls — it then keeps waiting; or
        `options` that cannot be offered), ModelNotFound, ModelForbidden, RateLimited."""
        return await self._resume_tools(principal, conversation_id, results, model, stream, options)

    async def _resume_tools(
        self,
        principal: Principal,
        conversation_id: UUID,
        results: Sequence[ChatMessage],
        model: str | None,
        stream: bool,
        options: TurnOptions,
        *,
        request_head: str | None = None,
        prior_head: str | None = None,
    ) -> Run:
        """`submit_tool_results`; the one place a stateless request's tool messages resume
        the run that asked for them (with its transcript heads)."""
        options.offer(self._tool_specs(principal))
        slot = await self._claims.take_slot(principal)
        async with freed_on_error(slot):
            claimed = await self._claims.claim(
                principal, conversation_id, awaiting_tools=True, fingerprint=request_head
            )
        run = Run(self._engine, *claimed, slot, request_head=request_head, prior_head=prior_head)
        async with run.preparing(on_failure=ConversationStatus.AWAITING_TOOLS):
            model = self._models.resolve(principal, model or run.conversation.model)
            stored = [m.to_chat() for m in await self._repo.messages(conversation_id)]
            check_tool_results(open_tool_calls(stored), results)
        # A failure from here on may leave part of the results stored: `failed`, as `start`.
        async with run.preparing(on_failure=ConversationStatus.FAILED):
            new = await self._store_all(conversation_id, results)
            history = await self._history(conversation_id)
        turn = next((m.content or "" for m in reversed(history) if m.role == "user"), "")
        plan = self._plan(principal, run, stream, new, history, turn, model=model, options=options)
        return run.ready(plan)

    async def approve(
        self,
        principal: Principal,
        conversation_id: UUID,
        request: ApprovalRequest,
        *,
        stream: bool = False,
    ) -> Run:
        """Decides the pending calls and resumes the run at `act`: approved calls run (with
        edited arguments), rejected ones answer the model with the rejection. Exactly one of
        concurrent approvals wins; the others get NotPendingApproval. RateLimited when too
        many runs are in progress.

        Raises NotFound, ModelForbidden, ApprovalForbidden (an API key without
        `can_approve`), ToolForbidden (a pending call's tool the credential may not use):
        these are checked before the decision is claimed, so the calls stay pending."""
        slot = await self._claims.take_slot(principal)
        async with freed_on_error(slot):
            conversation, run_id, decided = await self._claims.decide(
                principal, conversation_id, request
            )
        run = Run(self._engine, conversation, run_id, slot)
        async with run.preparing(on_failure=ConversationStatus.FAILED):
            new = [
                await self._append_rejection(conversation_id, item)
                for item in decided
                if not item.decision.approved
            ]
            approved = [item for item in decided if item.decision.approved]
            history = await self._history(
                conversation_id, [item.pending.tool_call_id for item in approved]
            )
        turn = next((m.content or "" for m in reversed(history) if m.role == "user"), "")
        plan = self._plan(principal, run, stream, new, history, turn, approved=approved)
        return run.ready(plan)

    async def fail_expired_runs(self) -> int:
        """Marks `failed` the runs whose process died (their lease ran out)."""
        count = await self._repo.fail_expired_runs(self._now())
        if count:
            log.warning("interrupted runs marked failed", count=count)
        return count

    # --- internals -------------------------------------------------------------------------

    async def _append_rejection(self, conversation_id: UUID, item: DecidedToolCall) -> Message:
        reason = item.decision.reason or "no reason given"
        return await self._repo.append(
            NewMessage(
                conversation_id,
                "tool",
                self._now(),
                content=json.dumps({"error": f"rejected by the user: {reason}"}),
                tool_call_id=item.pending.tool_call_id,
                name=item.pending.name,
            )
        )

    async def _store_all(
        self, conversation_id: UUID, history: Sequence[ChatMessage]
    ) -> list[Message]:
        now = self._now()
        new = [NewMessage.of_chat(conversation_id, message, now) for message in history]
        return await self._repo.append_many(conversation_id, new)

    async def _history(
        self, conversation_id: UUID, resuming: Sequence[str] = ()
    ) -> list[ChatMessage]:
        return repair_history(await self._repo.chat_history(conversation_id), resuming)

    def _plan(
        self,
        principal: Principal,
        run: Run,
        stream: bool,
        new: list[Message],
        history: list[ChatMessage],
        user_message: str,
        *,
        approved: list[DecidedToolCall] | None = None,
        model: str | None = None,
        options: TurnOptions = PLAIN_TURN,
    ) -> RunPlan:
        """The graph's context and initial state."""
        conversation = run.conversation
        recorder = ConversationRecorder(self._repo, principal, conversation.id, self._now)
        context = RunContext(
            principal=principal,
            conversation_id=conversation.id,
            model=model or conversation.model,
            tools=self._tool_specs(principal),
            stream=stream,
            recorder=recorder,
            options=options,
        )
        state: AgentState = {
            "history": history,
            "user_message": user_message,
            "fixed_agent": conversation.agent_type,
            "approved": approved or [],
            "iteration": 0,
        }
        return RunPlan(context, state, new)


def _without_unseen_answer(history: list[ChatMessage]) -> list[ChatMessage]:
    """The history a stored turn runs again on: without the trailing text answer of the
    attempt the client never received (cut short, or written before the run failed)."""
    end = len(history)
    while end and history[end - 1].role == "assistant" and not history[end - 1].tool_calls:
        end -= 1
    return history[:end]
