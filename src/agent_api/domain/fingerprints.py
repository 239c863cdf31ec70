"""Fingerprints of a client's transcript: how a stateless request finds its conversation.

A transcript's fingerprint is the head of a hash chain over its messages:
`chain(chain(chain(None, m1), m2), m3)`. Each link hashes the previous head and one message in
its *normalised* form, so two transcripts have the same head exactly when they have the same
messages in the same order (up to what normalisation ignores), and every prefix of a
transcript has its own head, computable in one pass (`heads`).

What counts as the same message (`normalised`): the role, the text (None and "" are the
same), the content parts when the message has any, the tool calls (id, name, and arguments
canonicalised: JSON re-dumped with sorted keys and compact separators, the raw text when it is
not JSON) and `tool_call_id`. Ignored: `name`, `refusal` and anything else clients add or drop
when they echo a history back (SDKs send `content: ""` or null for a tool-call message,
LangChain re-serialises arguments with other spacing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from agent_api.domain.chat import ChatMessage, ToolCall

FINGERPRINT_LENGTH = 64  # sha256 hex, the width of `conversations.fingerprint`


def canonical_arguments(arguments: str) -> str:
    """A tool call's arguments in one spelling: parsed JSON re-dumped with sorted keys and
    compact separators; the raw text when it is not JSON (the model may produce that)."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _call(call: ToolCall) -> list[str]:
    return [call.id, call.name, canonical_arguments(call.arguments)]


def _parts(message: ChatMessage) -> Any:
    """The message's content parts, when the message type has them (images, audio, files);
    None for a text-only message. Parts are compared as their JSON (sorted keys)."""
    parts = getattr(message, "parts", None)
    return list(parts) if parts else None


def normalised(message: ChatMessage) -> str:
    """The part of `message` that decides whether two messages are the same, as one string.
    Extend it here (and only here) when a message gains a field that matters. Plain text
    messages (most of a history) skip the JSON encoder: hashing stays cheap per message."""
    parts = _parts(message)
    if parts is None and not message.tool_calls and message.tool_call_id is None:
        return f"{message.role}\x1e{message.content or ''}"
    document = {
        "role": message.role,
        "content": message.content or "",
        "parts": parts,
        "tool_calls": [_call(c) for c in message.tool_calls],
        "tool_call_id": message.tool_call_id,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain(previous: str | None, message: ChatMessage) -> str:
    """The head of the chain `previous` extended by `message` (sha256 hex, 64 characters).
    `previous` is None for the first message of a transcript."""
    digest = hashlib.sha256()
    digest.update((previous or "").encode())
    digest.update(b"\n")
    digest.update(normalised(message).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def heads(messages: Iterable[ChatMessage], start: str | None = None) -> list[str]:
    """The head after each message: `heads(ms)[i]` is the fingerprint of `ms[: i + 1]`."""
    out: list[str] = []
    head = start
    for message in messages:
        head = chain(head, message)
        out.append(head)
    return out


def resumable_prefixes(messages: Sequence[ChatMessage]) -> list[int]:
    """The lengths k of the prefixes of `messages` a stored conversation it continues may
    hold, longest first: the whole request (a retry of it), and the prefix ending with its
    last assistant message (what the client was shown at the end of the previous turn).
    An earlier prefix is never continued: the messages after it would hold an assistant
    message the conversation never gave, which makes the request a branch."""
    lengths = {len(messages)}
    last = max((i + 1 for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is not None:
        lengths.add(last)
    return sorted(lengths, reverse=True)
