"""`DemoChatModel`: the offline, deterministic model (id `demo`) used when no LLM is configured.

Good enough to show the whole agent loop without a key. Given the last message:
- a user message with "search <terms>" while `web_search` is offered: calls
  `web_search({"query": "<terms>"})`;
- a user message with arithmetic (e.g. "What is 1337 * 42?") while `calculator` is offered:
  calls `calculator({"expression": "1337 * 42"})`;
- tool results: answers from them ("1337 * 42 = 56154.", a short list of search results), and
  acknowledges a tool error or a rejection in words;
- anything else: echoes it, with a hint of what it can do. A message with content parts is
  answered by its text; the images, audio and files beside it are only counted ("with 1
  image").
The same request always gives the same answer (tool call ids included). Usage counts words.
Streams word by word, tool calls as spec-shaped fragments, then the StreamEnd; it never raises.

Request options it honours: `max_completion_tokens` / `max_tokens` cut the answer at that many
words (finish reason `length`); `stop` ends it before the first stop sequence; `logprobs` gives
each word a log probability of 0 (the demo is certain), `top_logprobs` lists that one choice;
`seed` holds trivially (every answer is deterministic). Every other option (sampling,
penalties, `response_format` ...) is accepted and changes nothing: it is not a real model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from agent_api.domain.chat import (
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

MODEL_ID = "demo"
ARGUMENT_FRAGMENT = 8  # characters of tool-call arguments per streamed fragment

_FUNCTIONS = r"(?:sqrt|abs|round|min|max|log|exp|sin|cos|tan|pi)\b"
_ARITHMETIC_RUN = re.compile(rf"(?:{_FUNCTIONS}|\d+(?:\.\d+)?|\*\*|[-+*/%^(),]|[ \t])+")
_BINARY = re.compile(r"[\d)]\s*(?:\*\*|[-+*/%^])\s*[-+(]*\s*(?:\d|" + _FUNCTIONS + ")")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_SEARCH = re.compile(
    r"\bsearch(?:\s+(?:the\s+web|the\s+internet|online))?(?:\s+(?:for|about))?\s+(.+)",
    re.IGNORECASE | re.DOTALL,
)


class DemoChatModel:
    """The ChatModel port, offline. See the module docstring for its behaviour."""

    model_id = MODEL_ID

    async def complete(self, request: ChatRequest) -> ChatResult:
        return answer(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        result = answer(request)
        for event in fragments(result):
            await asyncio.sleep(0)  # a real stream yields to the loop between events
            yield event
        yield StreamEnd(result)


def answer(request: ChatRequest) -> ChatResult:
    last = request.messages[-1]
    call: ToolCall | None = None
    if last.role == "tool":
        text = _answer_from_tools(request.messages)
    elif last.role == "user":
        said = (last.content or "").strip()
        call = _tool_call_for(request, said)
        text = "" if call else _echo(request, said) + _attachments(last)
    else:
        text = "How can I help?"
    if call is not None:
        message = ChatMessage.assistant(None, (call,))
        reason = "tool_calls"
        completion = _words(call.arguments) + 1
    else:
        text, reason = _limit(_stop(text, request.options.get("stop")), request.length_bound)
        message = ChatMessage.assistant(text)
        completion = _words(text)
    usage = Usage(_prompt_tokens(request), completion)
    return ChatResult(message, reason, usage, MODEL_ID, _logprobs(request, message.content))


def fragments(result: ChatResult) -> Iterator[TextDelta | ToolCallDelta]:
    """The stream events spelling `result.message`, in the order a real model sends them."""
    for word in re.findall(r"\s*\S+|\s+$", result.message.content or ""):
        yield TextDelta(word)
    for index, call in enumerate(result.message.tool_calls):
        yield ToolCallDelta(index, call.id, call.name, "")
        for start in range(0, len(call.arguments), ARGUMENT_FRAGMENT):
            yield ToolCallDelta(
                index, None, None, call.arguments[start : start + ARGUMENT_FRAGMENT]
            )


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in `text` ("What is 1337 * 42?" -> "1337 * 42")."""
    best: str | None = None
    for match in _ARITHMETIC_RUN.finditer(text):
        candidate = match.group().strip(" \t,").rstrip("-+*/%^(")
        candidate = candidate.lstrip("*/%^)").strip()
        if candidate.count("(") != candidate.count(")") or _DATE.fullmatch(candidate):
            continue
        if _BINARY.search(candidate) or re.match(_FUNCTIONS + r"\s*\(", candidate):
            best = candidate if best is None or len(candidate) > len(best) else best
    return best


def find_search_terms(text: str) -> str | None:
    match = _SEARCH.search(text)
    if not match:
        return None
    terms = match.group(1).strip().rstrip("?.!").strip(" \"'")
    return terms or None


def _tool_call_for(request: ChatRequest, said: str) -> ToolCall | None:
    if request.offers("web_search") and (terms := find_search_terms(said)):
        return _call(request, "web_search", {"query": terms})
    if request.offers("calculator") and (expression := find_expression(said)):
        return _call(request, "calculator", {"expression": expression})
    return None


def _call(request: ChatRequest, name: str, arguments: dict[str, Any]) -> ToolCall:
    encoded = json.dumps(arguments)
    seed = f"{len(request.messages)}|{name}|{encoded}".encode()
    return ToolCall(f"call_{hashlib.sha256(seed).hexdigest()[:24]}", name, encoded)


_MEDIA_NAMES = {"image_url": "image", "input_audio": "audio clip", "file": "file"}


def _attachments(message: ChatMessage) -> str:
    """The note `" (with 2 images and 1 file)"` for a message with such parts, else `""`."""
    counts: dict[str, int] = {}
    for part in message.media:
        name = _MEDIA_NAMES[str(part["type"])]
        counts[name] = counts.get(name, 0) + 1
    if not counts:
        return ""
    said = [f"{n} {name}{'s' if n > 1 else ''}" for name, n in counts.items()]
    return f" (with {' and '.join(said)})"


def _echo(request: ChatRequest, said: str) -> str:
    if not said:
        return "How can I help?"
    hints = []
    if request.offers("calculator"):
        hints.append('to calculate ("What is 1337 * 42?")')
    if request.offers("web_search"):
        hints.append('to "search <terms>"')
    hint = f" Ask me {' or '.join(hints)}." if hints else ""
    return f'You said: "{said}". I am the offline demo model, so I can only echo.{hint}'


def _answer_from_tools(messages: tuple[ChatMessage, ...]) -> str:
    results: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.insert(0, message)
    asked = next((m for m in reversed(messages) if m.tool_calls), None)
    calls = {call.id: call for call in asked.tool_calls} if asked else {}
    return " ".join(_describe(result, calls.get(result.tool_call_id or "")) for result in results)


def _describe(result: ChatMessage, call: ToolCall | None) -> str:
    name = result.name or (call.name if call else "tool")
    content = (result.content or "").strip()
    if content.lower().startswith("rejected by the user"):
        reason = content.partition(":")[2].strip()
        because = f" ({reason})" if reason else ""
        return f"The {name} call was rejected by the user{because}, so I did not run it."
    try:
        data = json.loads(content)
    except ValueError:
        return f"The {name} tool said: {_clip(content)}"
    arguments = _arguments(call)
    if isinstance(data, dict) and data.get("error"):
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        return f"The {name} tool failed: {_clip(str(message))}"
    if isinstance(data, dict) and "result" in data:
        expression = data.get("expression") or arguments.get("expression")
        return f"{expression} = {data['result']}." if expression else f"The result is {data}."
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return _summarise_search(data["results"], data.get("query") or arguments.get("query"))
    return f"The {name} tool returned: {_clip(json.dumps(data))}"


def _summarise_search(results: list[Any], query: Any) -> str:
    about = f' for "{query}"' if query else ""
    if not results:
        return f"I found nothing{about}."
    items = [
        f"{item.get('title') or item.get('url')} ({item.get('url')})"
        for item in results[:3]
        if isinstance(item, dict)
    ]
    return f"I found {len(results)} results{about}: " + "; ".join(items) + "."


def _arguments(call: ToolCall | None) -> dict[str, Any]:
    try:
        parsed = json.loads(call.arguments) if call else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _clip(text: str, limit: int = 200) -> str:
    text = text.rstrip(".")
    return (text if len(text) <= limit else text[: limit - 3] + "...") + "."


def _limit(text: str, max_tokens: int | None) -> tuple[str, str]:
    words = text.split(" ")
    if max_tokens is None or len(words) <= max_tokens:
        return text, "stop"
    return " ".join(words[:max_tokens]), "length"


def _stop(text: str, stop: Any) -> str:
    """`text` up to the first of the stop sequences (a string or a list of them)."""
    sequences = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cuts = [text.find(seq) for seq in sequences if isinstance(seq, str) and seq in text]
    return text[: min(cuts)] if cuts else text


def _logprobs(request: ChatRequest, content: str | None) -> dict[str, Any] | None:
    """OpenAI's choice `logprobs` for `content`, one token per streamed word, when asked."""
    if not request.options.get("logprobs") or not content:
        return None
    top = request.options.get("top_logprobs") or 0
    tokens = []
    for word in re.findall(r"\s*\S+|\s+$", content):
        choice = {"token": word, "logprob": 0.0, "bytes": list(word.encode())}
        tokens.append({**choice, "top_logprobs": [choice] if top else []})
    return {"content": tokens, "refusal": None}


def _words(text: str | None) -> int:
    return len((text or "").split())


def _prompt_tokens(request: ChatRequest) -> int:
    # Roughly what a tokenizer would count: words, plus a little per message and per tool.
    tokens = sum(
        3 + _words(m.content) + sum(_words(c.arguments) + 1 for c in m.tool_calls)
        for m in request.messages
    )
    return tokens + sum(5 + _words(tool.description) for tool in request.tools)
