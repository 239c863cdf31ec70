"""Who may run a conversation now: a run slot (the cap on concurrent runs) and the
conversation's claim — for a new turn, for the client's tool results, or with an approval
decision. Each step raises the error that says why not; `freed_on_error` gives a slot back
when the claim after it fails (no run holds the slot yet)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from agent_api.application.ports import ConversationRepository
from agent_api.application.run_slots import RunSlot, RunSlotService
from agent_api.domain.conversations import (
    ApprovalRequest,
    Conversation,
    ConversationStatus,
    DecidedToolCall,
    open_tool_calls,
)
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import (
    ConversationBusy,
    InvalidRequest,
    NotFound,
    NotPendingApproval,
)


class ConversationClaims:
    """The slot and claim steps of `ConversationService`'s use cases."""

    def __init__(
        self,
        repo: ConversationRepository,
        clock: Callable[[], datetime],
        lease: timedelta,
        run_slots: RunSlotService | None = None,
    ) -> None:
        self._repo = repo
        self._now = clock
        self._lease = lease
        self._run_slots = run_slots

    async def take_slot(self, principal: Principal) -> RunSlot:
        """Raises RateLimited when the principal has too many runs in progress."""
        if self._run_slots is None:
            return RunSlot(None, "", [], self._lease)
        return await self._run_slots.acquire(principal)

    async def claim(
        self, principal: Principal, conversation_id: UUID, *, awaiting_tools: bool = False
    ) -> tuple[Conversation, UUID]:
        """Claims the conversation for a new turn, or (`awaiting_tools`) for the client's tool
        results; raises the error that says why it cannot be."""
        run_id = uuid.uuid4()
        claimed = await self._repo.claim_run(
            conversation_id,
            principal.user.id,
            run_id,
            self._now(),
            self._lease,
            awaiting_tools=awaiting_tools,
        )
        if claimed is not None:
            return claimed, run_id
        current = await self._repo.get(conversation_id, principal.user.id)
        if current is None:
            raise NotFound("conversation not found")
        status = current.status
        if status is ConversationStatus.PENDING_APPROVAL:
            raise ConversationBusy("the conversation is waiting for an approval decision")
        if status is ConversationStatus.AWAITING_TOOLS:
            # Like OpenAI: tool calls must be followed by the tool messages answering them.
            stored = [m.to_chat() for m in await self._repo.messages(conversation_id)]
            ids = ", ".join(call.id for call in open_tool_calls(stored))
            raise InvalidRequest(
                f"the conversation waits for the results of tool calls {ids}: send them as "
                "tool messages",
                param="messages",
            )
        if awaiting_tools and status is not ConversationStatus.RUNNING:
            raise InvalidRequest(
                "the conversation is not waiting for tool results", param="messages"
            )
        raise ConversationBusy("a run is in progress on this conversation")

    async def decide(
        self, principal: Principal, conversation_id: UUID, request: ApprovalRequest
    ) -> tuple[Conversation, UUID, list[DecidedToolCall]]:
        """Checks the caller's rights, decides the pending calls (`ApprovalRequest.decide`,
        which raises InvalidRequest for a bad decision), then claims the conversation with the
        decision, atomically: of concurrent approvals one wins."""
        current = await self._repo.get(conversation_id, principal.user.id)
        if current is None:
            raise NotFound("conversation not found")
        principal.credential.require_model(current.model)
        pending = await self._repo.pending_approvals(conversation_id)
        principal.credential.require_approval_rights(call.name for call in pending)
        if current.status is not ConversationStatus.PENDING_APPROVAL:
            raise NotPendingApproval()
        decided = request.decide(pending)
        run_id = uuid.uuid4()
        applied = await self._repo.apply_decision(
            conversation_id, principal.user.id, run_id, decided, self._now(), self._lease
        )
        if not applied:
            raise NotPendingApproval()
        # What the claim just wrote; no need to read it back.
        conversation = replace(current, status=ConversationStatus.RUNNING, run_id=run_id)
        return conversation, run_id, decided


@asynccontextmanager
async def freed_on_error(slot: RunSlot) -> AsyncIterator[None]:
    """Gives the slot back when claiming the conversation fails: no run holds it yet."""
    try:
        yield
    except BaseException:
        await slot.release()
        raise
