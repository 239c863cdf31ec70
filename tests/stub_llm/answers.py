"""The stub's answers: the scripted `Reply`, the default behaviour, and the exact OpenAI
bodies (a `chat.completion`, or the `data:` payloads of a stream) built from a reply."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_EXPRESSION = re.compile(r"\(*\s*\d+(?:\.\d+)?(?:\s*(?:\*\*|[-+*/%])\s*\(*\s*\d+(?:\.\d+)?\s*\)*)+")
_WORDS = re.compile(r"\s*\S+|\s+$")


@dataclass
class Reply:
    text: str | None = None
    tool_calls: Sequence[tuple[Any, ...]] = ()
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None
    stall_after: int | None = None
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None
    send_usage: bool = True
    model: str | None = None
    argument_chunk: int = 8
    raw_stream: Sequence[bytes] | None = None


def default_reply(body: dict[str, Any]) -> Reply:
    """The answer given when nothing is scripted (see the module docstring)."""
    messages = body.get("messages") or [{}]
    tools = {(t.get("function") or {}).get("name") for t in body.get("tools") or ()}
    last = messages[-1]
    if last.get("role") == "tool":
        calls = {}
        for message in messages:
            for call in message.get("tool_calls") or ():
                calls[call.get("id")] = call
        answers: list[str] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            answers.insert(0, _answer_tool(message, calls.get(message.get("tool_call_id"))))
        return Reply(text=" ".join(answers))
    said = _text(last.get("content"))
    if last.get("role") == "user" and "calculator" in tools:
        match = _EXPRESSION.search(said)
        if match:
            return Reply(tool_calls=[("calculator", {"expression": match.group().strip()})])
    return Reply(text=f"Echo: {said[:200]}" if said else "Echo.")


def _answer_tool(message: dict[str, Any], call: dict[str, Any] | None) -> str:
    content = _text(message.get("content"))
    try:
        data = json.loads(content)
        arguments = json.loads(call["function"]["arguments"]) if call else {}
    except (ValueError, KeyError, TypeError):
        return f"The tool said: {content[:100]}."
    if isinstance(data, dict) and "result" in data:
        expression = data.get("expression") or arguments.get("expression")
        return f"{expression} = {data['result']}."
    return f"The tool said: {content[:100]}."


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _usage(body: dict[str, Any], reply: Reply, calls: list[tuple[str, str, str]]) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = sum(3 + len(_text(m.get("content")).split()) for m in body.get("messages") or ())
        completion = len((reply.text or "").split()) + sum(len(a) // 4 + 1 for _, _, a in calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _calls(body: dict[str, Any], reply: Reply) -> list[tuple[str, str, str]]:
    """(id, name, arguments JSON) per tool call of `reply`."""
    result = []
    for call in reply.tool_calls:
        name, arguments = call[0], call[1]
        encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
        seed = f"{len(body.get('messages') or ())}|{name}|{encoded}".encode()
        call_id = call[2] if len(call) > 2 else f"call_{hashlib.sha256(seed).hexdigest()[:24]}"
        result.append((call_id, name, encoded))
    return result


def completion(body: dict[str, Any], reply: Reply, number: int) -> dict[str, Any]:
    calls = _calls(body, reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in calls
        ]
    answer: dict[str, Any] = {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model") or "stub",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish_reason or ("tool_calls" if calls else "stop"),
            }
        ],
    }
    if reply.send_usage:
        answer["usage"] = _usage(body, reply, calls)
    return answer


def chunks(body: dict[str, Any], reply: Reply, number: int) -> list[bytes]:
    """The `data:` payloads of a streamed answer, `[DONE]` included."""
    calls = _calls(body, reply)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    head = {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model or body.get("model") or "stub",
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        extra = {"usage": None} if include_usage else {}
        return json.dumps({**head, "choices": [choice], **extra}).encode()

    out = [chunk({"role": "assistant", "content": "" if reply.text else None})]
    out += [chunk({"content": word}) for word in _WORDS.findall(reply.text or "")]
    for index, (call_id, name, arguments) in enumerate(calls):
        first = {"name": name, "arguments": ""}
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "id": call_id, "type": "function", "function": first}
                    ]
                }
            )
        )
        step = max(1, reply.argument_chunk)
        for start in range(0, len(arguments), step):
            piece = {"arguments": arguments[start : start + step]}
            out.append(chunk({"tool_calls": [{"index": index, "function": piece}]}))
    out.append(chunk({}, reply.finish_reason or ("tool_calls" if calls else "stop")))
    if include_usage and reply.send_usage:
        out.append(
            json.dumps({**head, "choices": [], "usage": _usage(body, reply, calls)}).encode()
        )
    out.append(b"[DONE]")
    return out
