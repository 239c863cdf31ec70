"""What one agent run carries: its state, its context, and the ports its nodes use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict
from uuid import UUID

from agent_api.application.agent.context import ContextWindow
from agent_api.application.ports import ChatModel
from agent_api.domain.chat import (
    PLAIN_TURN,
    ChatMessage,
    ChatResult,
    ToolCall,
    ToolSpec,
    TurnOptions,
)
from agent_api.domain.conversations import AgentType, DecidedToolCall, Message, PendingToolCall
from agent_api.domain.credentials import Principal
from agent_api.tools.outcome import ToolOutcome


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
    options: TurnOptions = PLAIN_TURN


class AgentState(TypedDict, total=False):
    history: list[ChatMessage]
    user_message: str
    fixed_agent: AgentType
    agent: AgentType
    pending: list[ToolCall]
    approved: list[DecidedToolCall]
    awaiting: list[tuple[ToolCall, dict[str, Any], str]]
    client_calls: list[ToolCall]
    iteration: int
    tools_off: bool


@dataclass(frozen=True, slots=True)
class AgentDeps:
    """What the nodes need for every run, fixed for the process (see `build_agent_graph`)."""

    chat_model: ChatModel
    tools: AgentTools
    max_iterations: int
    max_concurrent_tools: int
    context_window: Callable[[str], ContextWindow] | None = None
    max_tool_calls_per_step: int = 32
