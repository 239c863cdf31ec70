"""ConversationRecorder: writes what a run produces into the conversation's tables, and
accounts every LLM call's tokens to the caller (user and credential), in the same
transaction as the answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from agent_api.application.ports import ConversationRepository
from agent_api.domain.chat import ChatResult, ToolCall
from agent_api.domain.conversations import Message, NewMessage, PendingToolCall
from agent_api.domain.credentials import Principal
from agent_api.tools.outcome import ToolOutcome


def for_model(outcome: ToolOutcome) -> Any:
    """What the model reads as the tool's answer: the result, or the error and its code."""
    if outcome.ok:
        return outcome.result
    return {"error": outcome.error_message or "tool failed", "code": outcome.error_code}


class ConversationRecorder:
    def __init__(
        self,
        repo: ConversationRepository,
        principal: Principal,
        conversation_id: UUID,
        clock: Callable[[], datetime],
    ) -> None:
        self._repo = repo
        self._principal = principal
        self._conversation_id = conversation_id
        self._now = clock

    async def assistant(
        self,
        result: ChatResult,
        calls: Sequence[ToolCall],
        latency_ms: int,
        complete: bool = True,
        *,
        context_dropped: int = 0,
    ) -> Message:
        return await self._repo.append_answer(
            NewMessage(
                self._conversation_id,
                "assistant",
                self._now(),
                content=result.message.content,
                tool_calls=tuple(calls),
                model=result.model,
                usage=result.usage,
                latency_ms=latency_ms,
                is_complete=complete,
                context_dropped=context_dropped,
            ),
            self._principal.user.id,
            self._principal.api_key_id,
        )

    async def tool_result(self, outcome: ToolOutcome) -> Message:
        return await self._repo.append(
            NewMessage(
                self._conversation_id,
                "tool",
                self._now(),
                content=json.dumps(for_model(outcome), ensure_ascii=False, default=str),
                tool_call_id=outcome.tool_call_id,
                name=outcome.name,
            )
        )

    async def request_approval(
        self, requests: Sequence[tuple[ToolCall, dict[str, Any], str]]
    ) -> list[PendingToolCall]:
        return await self._repo.add_pending_approvals(
            self._conversation_id,
            self._principal.user.id,
            self._principal.api_key_id,
            None,
            requests,
            self._now(),
        )
