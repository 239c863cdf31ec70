"""Our chat values <-> the OpenAI `/chat/completions` wire format.

`request_body` serialises a `ChatRequest`; `parse_completion` reads a non-streamed answer;
`ChunkAssembler` reads streamed chunks one at a time, turning each into the events it carries
and remembering enough to build the final `ChatResult`. Parsing is lenient about what real
upstreams do differently (missing `index` or `id`, a repeated `id`, arguments sent as an
object, usage on the last choice chunk or nowhere, odd finish reasons) and raises
`UpstreamFailed` only when an answer cannot be understood at all.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent_api.domain.chat import (
    FINISH_REASONS,
    LENGTH_FIELDS,
    TOOL_CHOICE_MODES,
    ChatMessage,
    ChatRequest,
    ChatResult,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from agent_api.domain.errors import UpstreamFailed

INVALID_ANSWER = "the language model upstream sent an answer that could not be read"
_OWNED_FIELDS = frozenset({"model", "messages", "tools", "tool_choice", "stream", "stream_options"})


def request_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [message_to_wire(message) for message in request.messages],
    }
    if request.tools:
        body["tools"] = [tool_to_wire(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = tool_choice_to_wire(request.tool_choice)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None and not any(f in request.options for f in LENGTH_FIELDS):
        # `max_tokens` rather than `max_completion_tokens`: every compatible server knows it.
        body["max_tokens"] = request.max_tokens
    # The client's fields, in the spelling it used (`max_completion_tokens` for o-series
    # upstreams that refuse `max_tokens`); what this adapter owns is never overridden.
    body.update((k, v) for k, v in request.options.items() if k not in _OWNED_FIELDS)
    if not request.tools:  # OpenAI refuses it on a call that offers no tools
        body.pop("parallel_tool_calls", None)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters or {"type": "object", "properties": {}},
    }
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def tool_choice_to_wire(choice: str) -> Any:
    """A mode as its string; a function's name as `{"type": "function", "function": {name}}`."""
    if choice in TOOL_CHOICE_MODES:
        return choice
    return {"type": "function", "function": {"name": choice}}


def message_to_wire(message: ChatMessage) -> dict[str, Any]:
    """The message in OpenAI's request shape. A message with content parts sends them as its
    `content`, exactly as the client sent them (text, images, audio, files)."""
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content or "",
        }
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.parts:
        wire["content"] = [dict(part) for part in message.parts]
    elif message.role != "assistant" and message.content is None:
        wire["content"] = ""
    if message.tool_calls:
        wire["tool_calls"] = [call.to_openai() for call in message.tool_calls]
    return wire


def parse_usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    try:
        return Usage(
            max(0, int(value.get("prompt_tokens") or 0)),
            max(0, int(value.get("completion_tokens") or 0)),
        )
    except (TypeError, ValueError):
        return None


def finish_reason(reason: Any, *, has_tool_calls: bool) -> str:
    """The upstream's reason mapped onto the four the wire format allows."""
    if has_tool_calls or reason == "function_call":
        return "tool_calls"
    return reason if reason in FINISH_REASONS else "stop"


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value)


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_completion(body: Any, *, requested_model: str) -> ChatResult:
    """A `chat.completion` object -> ChatResult. Raises UpstreamFailed when it is not one."""
    try:
        choice = body["choices"][0]
        message = choice["message"]
        calls = tuple(
            ToolCall(
                id=str(call.get("id") or _new_call_id()),
                name=str(call["function"]["name"]),
                arguments=_arguments(call["function"].get("arguments")),
            )
            for call in message.get("tool_calls") or ()
        )
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "".join(str(part.get("text", "")) for part in content)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamFailed(INVALID_ANSWER) from exc
    return ChatResult(
        message=ChatMessage.assistant(content if content else None, calls),
        finish_reason=finish_reason(choice.get("finish_reason"), has_tool_calls=bool(calls)),
        usage=parse_usage(body.get("usage")) or Usage(),
        model=str(body.get("model") or requested_model),
        logprobs=choice.get("logprobs") or None,
    )


@dataclass(slots=True)
class _Call:
    index: int  # ours: 0-based, in order of first appearance
    id: str | None
    name: str | None
    started: bool = False  # its first fragment (with id and name) has been emitted
    held: list[str] = field(default_factory=list)  # arguments received before the name
    arguments: list[str] = field(default_factory=list)


class ChunkAssembler:
    """Reads `chat.completion.chunk` objects; `feed` returns the events each one carries.

    Tool-call fragments are re-emitted in the spec's shape whatever the upstream did: the first
    fragment of each call has its id and name, later ones only arguments. A chunk carrying an
    `error` object raises UpstreamFailed with a generic message (the upstream's text is not
    repeated to our clients).
    """

    def __init__(self, requested_model: str) -> None:
        self._model = requested_model
        self._text: list[str] = []
        self._calls: list[_Call] = []
        self._by_upstream_index: dict[int, _Call] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._logprobs: dict[str, list[Any]] = {}  # "content"/"refusal" -> tokens, in order

    def feed(self, chunk: Any) -> list[TextDelta | ToolCallDelta]:
        if not isinstance(chunk, dict):
            raise UpstreamFailed(INVALID_ANSWER)
        if chunk.get("error"):
            raise UpstreamFailed("the language model upstream failed during the answer")
        if chunk.get("model"):
            self._model = str(chunk["model"])
        self.usage = parse_usage(chunk.get("usage")) or self.usage
        events: list[TextDelta | ToolCallDelta] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._text.append(text)
                events.append(TextDelta(text))
            for position, fragment in enumerate(delta.get("tool_calls") or ()):
                events.extend(self._tool_fragment(position, fragment))
            self._add_logprobs(choice.get("logprobs"))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return events

    def _add_logprobs(self, logprobs: Any) -> None:
        """Each chunk's `logprobs.content` (and `.refusal`) continues the answer's lists."""
        if not isinstance(logprobs, dict):
            return
        for key in ("content", "refusal"):
            tokens = logprobs.get(key)
            if isinstance(tokens, list):
                self._logprobs.setdefault(key, []).extend(tokens)

    def _tool_fragment(self, position: int, fragment: Any) -> list[ToolCallDelta]:
        if not isinstance(fragment, dict):
            raise UpstreamFailed(INVALID_ANSWER)
        function = fragment.get("function") or {}
        upstream_index = fragment.get("index", position)
        call_id, name = fragment.get("id"), function.get("name")
        arguments = _arguments(function.get("arguments"))
        call = self._by_upstream_index.get(upstream_index)
        if call is None or (call_id and call.id and call_id != call.id):
            # A new call; some upstreams reuse one index for parallel calls, told apart by id.
            call = _Call(index=len(self._calls), id=call_id, name=name)
            self._calls.append(call)
            self._by_upstream_index[upstream_index] = call
        else:  # a repeated id or name is not a continuation of it
            call.id = call.id or call_id
            call.name = call.name or name
        if not call.started:
            if not call.name:
                call.held.append(arguments)  # cannot start a call without its name
                return []
            call.started = True
            call.id = call.id or _new_call_id()
            arguments = "".join([*call.held, arguments])
            call.arguments.append(arguments)
            return [ToolCallDelta(call.index, call.id, call.name, arguments)]
        if not arguments:
            return []
        call.arguments.append(arguments)
        return [ToolCallDelta(call.index, None, None, arguments)]

    def result(self) -> ChatResult:
        calls = tuple(
            ToolCall(id=call.id or "", name=call.name or "", arguments="".join(call.arguments))
            for call in self._calls
            if call.started
        )
        return ChatResult(
            message=ChatMessage.assistant("".join(self._text) or None, calls),
            finish_reason=finish_reason(self.finish_reason, has_tool_calls=bool(calls)),
            usage=self.usage or Usage(),
            model=self._model,
            logprobs={"content": None, "refusal": None, **self._logprobs}
            if self._logprobs
            else None,
        )
