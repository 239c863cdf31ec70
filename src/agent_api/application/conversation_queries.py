"""Conversations as their owner reads them: one with its history, a page of them, and the
counts the metrics report. Nothing here runs the agent; deleting is the one write."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from agent_api.application.ports import ConversationRepository
from agent_api.domain.conversations import (
    Conversation,
    ConversationStatus,
    Message,
    PendingToolCall,
)
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import InvalidRequest, NotFound


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: Conversation
    messages: list[Message]
    pending: list[PendingToolCall]


class ConversationReader:
    def __init__(self, repo: ConversationRepository, clock: Callable[[], datetime]) -> None:
        self._repo = repo
        self._now = clock

    async def get(self, principal: Principal, conversation_id: UUID) -> ConversationView:
        """Raises NotFound (also for another user's conversation)."""
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
        """Raises NotFound (also for another user's conversation)."""
        if not await self._repo.delete(conversation_id, principal.user.id, self._now()):
            raise NotFound("conversation not found")

    async def count_pending_approvals(self) -> int:
        return await self._repo.count_pending_approvals()


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
