"""The language of talking to a chat model: messages, tool calls, requests, results, usage and
the events of a streamed answer. Pure values, no I/O; the `ChatModel` port speaks only these.

Invariants enforced at construction (an `InvalidRequest` when broken, so a slip from client
input answers 400, never 500): a message has a known role, only an assistant message carries
tool calls, a tool message names the call it answers, only a user message carries content
parts; a request has at least one message; a
result's finish reason is one the OpenAI wire format allows. Usage is never negative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from agent_api.domain.errors import InvalidRequest

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset(get_args(Role))
FinishReason = Literal["stop", "tool_calls", "length", "content_filter"]
FINISH_REASONS: frozenset[str] = frozenset(get_args(FinishReason))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """An assistant's request to run a tool. `arguments` is the JSON text exactly as the model
    produced it: it may be invalid JSON, which the agent turns into a tool result."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        """The call in OpenAI's wire format, the one shape every surface and the store use:
        `{"id", "type": "function", "function": {"name", "arguments"}}`."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_openai(cls, wire: Mapping[str, Any]) -> ToolCall:
        """The call a `to_openai()` dict spells. Raises KeyError when a key is missing."""
        function = wire["function"]
        return cls(id=wire["id"], name=function["name"], arguments=function["arguments"])


MEDIA_PART_TYPES: frozenset[str] = frozenset({"image_url", "input_audio", "file"})


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat. `parts`, when not empty, is the message's content in OpenAI's
    content-part shape (`{"type": "text", "text"}`, `{"type": "image_url", ...}`,
    `{"type": "input_audio", ...}`, `{"type": "file", ...}`): what the model is given. `content`
    then holds the text parts joined, for everything that reads text (titles, the demo model,
    token counts of the text)."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role "tool": the call this message answers
    name: str | None = None  # for role "tool": the tool's name
    parts: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidRequest(f"unknown message role '{self.role}'", param="messages")
        if not isinstance(self.tool_calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        if self.tool_calls and self.role != "assistant":
            raise InvalidRequest("only assistant messages carry tool calls", param="messages")
        if self.role == "tool" and not self.tool_call_id:
            raise InvalidRequest("a tool message needs tool_call_id", param="messages")
        if not isinstance(self.parts, tuple):
            object.__setattr__(self, "parts", tuple(self.parts))
        if self.parts and self.role != "user":
            raise InvalidRequest("only user messages carry content parts", param="messages")

    @property
    def media(self) -> tuple[Mapping[str, Any], ...]:
        """The parts that are not text: images, audio, files."""
        return tuple(part for part in self.parts if part.get("type") in MEDIA_PART_TYPES)

    @property
    def has_content(self) -> bool:
        """True when the message says something: text or a non-text part."""
        return bool(self.content) or bool(self.media)

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        return cls("user", content)

    @classmethod
    def assistant(
        cls, content: str | None = None, tool_calls: tuple[ToolCall, ...] = ()
    ) -> ChatMessage:
        return cls("assistant", content, tool_calls)

    @classmethod
    def tool(cls, tool_call_id: str, name: str, content: str) -> ChatMessage:
        return cls("tool", content, tool_call_id=tool_call_id, name=name)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one or more LLM calls; `+` sums them (`sum(usages, Usage())` works)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __post_init__(self) -> None:
        if self.prompt_tokens < 0 or self.completion_tokens < 0:
            raise ValueError("token counts are never negative")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model (an OpenAI "function" tool); `parameters` is a JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool | None = None  # the client's `strict` flag, forwarded as given (None: unset)


ToolChoice = str  # "auto", "none", "required", or the name of the one function to call
TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """What a client asks of one agent turn beyond its messages, checked at the edge.

    `client_tools` are the client's own function tools: offered to the model beside the
    server's, never run here (a call of one ends the turn and goes back to the client).
    `tool_choice` applies to the turn's first model call. `upstream` holds the request fields
    forwarded unchanged on every model call of the turn (sampling, stop, seed, penalties,
    response_format ... in OpenAI's spelling). `max_completion_tokens` bounds each call and
    the sum over the turn."""

    client_tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    upstream: Mapping[str, Any] = field(default_factory=dict)
    max_completion_tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.client_tools, tuple):
            object.__setattr__(self, "client_tools", tuple(self.client_tools))
        names = [tool.name for tool in self.client_tools]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidRequest(f"tools are named twice: {', '.join(twice)}", param="tools")

    def is_client_tool(self, name: str) -> bool:
        """True when `name` is one of the client's own tools (never run here)."""
        return any(tool.name == name for tool in self.client_tools)

    def offer(self, server_tools: Sequence[ToolSpec]) -> tuple[ToolSpec, ...]:
        """What the model is offered: the server's tools, then the client's. Raises
        InvalidRequest (param `tools`) when a client tool is named like a server tool, and
        (param `tool_choice`) when the named function is offered by neither."""
        server = {tool.name for tool in server_tools}
        clash = sorted(server.intersection(tool.name for tool in self.client_tools))
        if clash:
            raise InvalidRequest(
                f"tools named like a server tool: {', '.join(clash)}; rename them",
                param="tools",
            )
        offered = (*server_tools, *self.client_tools)
        choice = self.tool_choice
        if choice not in TOOL_CHOICE_MODES and not any(t.name == choice for t in offered):
            raise InvalidRequest(
                f"tool_choice names the function '{choice}', which is not offered",
                param="tool_choice",
            )
        return offered


PLAIN_TURN = TurnOptions()  # no client tools, nothing forwarded: the native surface's turns


LENGTH_FIELDS = ("max_completion_tokens", "max_tokens")  # OpenAI's names for a call's bound


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One model call. `options` are request fields sent as they are, in OpenAI's spelling
    (`temperature`, `stop`, `response_format`, a length bound ...); `temperature` and
    `max_tokens` are the same fields for callers that set only those, and give way to
    `options` where both say something."""

    model: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    # None: not sent (the upstream's default, "auto"); else a mode or a function's name.
    tool_choice: ToolChoice | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.messages, tuple):
            object.__setattr__(self, "messages", tuple(self.messages))
        if not isinstance(self.tools, tuple):
            object.__setattr__(self, "tools", tuple(self.tools))
        if not self.messages:
            raise InvalidRequest("a chat request needs at least one message", param="messages")

    @property
    def length_bound(self) -> int | None:
        """The most tokens this call may generate, whichever field says so; None: no bound."""
        for name in LENGTH_FIELDS:
            if isinstance(self.options.get(name), int):
                return int(self.options[name])
        return self.max_tokens

    def offers(self, tool_name: str) -> bool:
        """True when a tool named `tool_name` is offered to the model."""
        return any(tool.name == tool_name for tool in self.tools)


@dataclass(frozen=True, slots=True)
class ChatResult:
    message: ChatMessage  # role "assistant": content and/or tool calls
    finish_reason: str  # one of FINISH_REASONS
    usage: Usage
    model: str
    logprobs: Any | None = None  # the upstream choice's `logprobs` object, as it sent it

    def __post_init__(self) -> None:
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {sorted(FINISH_REASONS)}")


# --- stream events ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """An OpenAI-style fragment: the first fragment of call `index` has `id` and `name` (and
    maybe the start of the arguments); later ones have neither and continue `arguments`.
    Indexes are 0-based and contiguous in order of first appearance."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """Always the last event of a stream: the assembled result, equal to what `complete`
    would have returned for the same answer."""

    result: ChatResult


ChatEvent = TextDelta | ToolCallDelta | StreamEnd


class DeltaAccumulator:
    """Folds `TextDelta`s and `ToolCallDelta`s into the assistant message they spell.

    Raises ValueError when a call's first fragment lacks its id or name (a broken stream).
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, tuple[str, str, list[str]]] = {}

    def add(self, event: TextDelta | ToolCallDelta) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
            return
        call = self._calls.get(event.index)
        if call is None:
            if not event.id or not event.name:
                raise ValueError(f"tool call {event.index} started without an id and a name")
            self._calls[event.index] = (event.id, event.name, [event.arguments])
        else:
            call[2].append(event.arguments)

    @property
    def has_tool_calls(self) -> bool:
        return bool(self._calls)

    def message(self) -> ChatMessage:
        calls = tuple(
            ToolCall(id=call_id, name=name, arguments="".join(parts))
            for _, (call_id, name, parts) in sorted(self._calls.items())
        )
        return ChatMessage.assistant("".join(self._text) or None, calls)
