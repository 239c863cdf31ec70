"""Hand-written fakes for unit tests of the agent graph and the conversation service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from agent_api.application.agent.recorder import for_model
from agent_api.domain.chat import (
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    StreamEnd,
    TextDelta,
    ToolCall,
    Usage,
)
from agent_api.domain.conversations import DecidedToolCall, Message, PendingToolCall
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import InvalidArguments, ToolForbidden, ToolNotFound
from agent_api.tools.outcome import ToolOutcome


def text(content: str, prompt: int = 10, completion: int = 5) -> ChatResult:
    return ChatResult(
        message=ChatMessage(role="assistant", content=content),
        finish_reason="stop",
        usage=Usage(prompt, completion),
        model="fake",
    )


def calls(*tool_calls: tuple[str, str, dict[str, Any]]) -> ChatResult:
    return ChatResult(
        message=ChatMessage(
            role="assistant",
            tool_calls=tuple(ToolCall(i, n, json.dumps(a)) for i, n, a in tool_calls),
        ),
        finish_reason="tool_calls",
        usage=Usage(10, 3),
        model="fake",
    )


class ScriptedChatModel:
    """Answers with the scripted results in order (the last one repeats); records requests."""

    def __init__(self, *results: ChatResult) -> None:
        self.results = list(results)
        self.requests: list[ChatRequest] = []

    def _next(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]

    async def complete(self, request: ChatRequest) -> ChatResult:
        return self._next(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        result = self._next(request)
        for word in (result.message.content or "").split(" "):
            if word:
                yield TextDelta(word + " ")
        yield StreamEnd(result)


class FakeTools:
    """`calculator` runs (returns 42), `delete_file` needs approval, `secret` is forbidden."""

    def __init__(self, run_seconds: float = 0.0) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []
        self.already_ran: set[UUID] = set()
        self.run_seconds = run_seconds
        self.active = 0
        self.peak = 0

    def approval_reason(self, name: str) -> str | None:
        return f"Tool '{name}' requires approval" if name == "delete_file" else None

    def check(self, principal: Principal, call: ToolCall) -> dict[str, Any]:
        if call.name not in {"calculator", "delete_file", "secret"}:
            raise ToolNotFound(f"tool not found: {call.name}")
        if call.name == "secret":
            raise ToolForbidden("forbidden")
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError:
            raise InvalidArguments("arguments are not JSON") from None
        return dict(args)

    async def run(self, principal: Principal, call: ToolCall, conversation_id: UUID) -> ToolOutcome:
        try:
            args = self.check(principal, call)
        except Exception as exc:
            return ToolOutcome(
                call.id, call.name, ok=False, error_code=type(exc).__name__, error_message=str(exc)
            )
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(self.run_seconds)
        self.active -= 1
        self.ran.append((call.name, args))
        return ToolOutcome(call.id, call.name, ok=True, result={"result": 42})

    async def run_approved(
        self, principal: Principal, decided: DecidedToolCall, conversation_id: UUID
    ) -> ToolOutcome | None:
        if decided.pending.execution_id in self.already_ran:
            return None
        self.already_ran.add(decided.pending.execution_id)
        self.ran.append((decided.pending.name, decided.effective_arguments))
        return ToolOutcome(
            decided.pending.tool_call_id, decided.pending.name, ok=True, result={"deleted": True}
        )


class MemoryRecorder:
    """Keeps what a run writes in lists."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.pending: list[PendingToolCall] = []
        self.incomplete: list[Message] = []

    def _add(self, role: str, **fields: Any) -> Message:
        message = Message(
            id=uuid.uuid4(),
            conversation_id=uuid.UUID(int=0),
            seq=len(self.messages) + 1,
            role=role,
            created_at=datetime.now(UTC),
            **fields,
        )
        self.messages.append(message)
        return message

    async def assistant(
        self,
        result: ChatResult,
        calls: Sequence[ToolCall],
        latency_ms: int,
        complete: bool = True,
        *,
        context_dropped: int = 0,
    ) -> Message:
        message = self._add(
            "assistant",
            content=result.message.content,
            tool_calls=tuple(calls),
            is_complete=complete,
            context_dropped=context_dropped,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
        )
        if not complete:
            self.incomplete.append(message)
        return message

    async def tool_result(self, outcome: ToolOutcome) -> Message:
        return self._add(
            "tool",
            content=json.dumps(for_model(outcome)),
            tool_call_id=outcome.tool_call_id,
            name=outcome.name,
        )

    async def request_approval(
        self, requests: Sequence[tuple[ToolCall, dict[str, Any], str]]
    ) -> list[PendingToolCall]:
        new = [
            PendingToolCall(uuid.uuid4(), call.id, call.name, args, reason, datetime.now(UTC))
            for call, args, reason in requests
        ]
        self.pending.extend(new)
        return new
