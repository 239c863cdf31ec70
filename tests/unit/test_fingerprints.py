"""Transcript fingerprints: the same transcript as clients echo it back hashes the same; any
change a model would see hashes differently."""

from __future__ import annotations

import json

import pytest

from agent_api.domain.chat import ChatMessage, ToolCall
from agent_api.domain.fingerprints import (
    FINGERPRINT_LENGTH,
    canonical_arguments,
    chain,
    heads,
    resumable_prefixes,
)

CALL = ToolCall("call_1", "get_weather", '{"city": "Paris", "unit": "c"}')


def head(*messages: ChatMessage) -> str:
    return heads(messages)[-1]


def test_a_link_is_a_sha256_hex_the_width_of_the_column() -> None:
    value = chain(None, ChatMessage.user("hi"))
    assert len(value) == FINGERPRINT_LENGTH
    int(value, 16)


def test_heads_are_the_chain_after_each_message() -> None:
    a, b = ChatMessage.user("a"), ChatMessage.assistant("b")
    assert heads([a, b]) == [chain(None, a), chain(chain(None, a), b)]


def test_order_and_every_message_matter() -> None:
    a, b = ChatMessage.user("a"), ChatMessage.user("b")
    assert head(a, b) != head(b, a)
    assert head(a, b) != head(b)
    assert head(ChatMessage.system("be brief"), a) != head(a)


@pytest.mark.parametrize(
    ("stored", "echoed"),
    [
        # SDKs send `content: ""`, others null, for an assistant message with tool calls
        (ChatMessage.assistant(None, (CALL,)), ChatMessage.assistant("", (CALL,))),
        # LangChain re-serialises the arguments: other spacing, other key order
        (
            ChatMessage.assistant(None, (CALL,)),
            ChatMessage.assistant(
                None, (ToolCall("call_1", "get_weather", '{"unit":"c","city":"Paris"}'),)
            ),
        ),
        # a tool message's `name` is dropped by some clients, added by others
        (
            ChatMessage.tool("call_1", "get_weather", "18C"),
            ChatMessage("tool", "18C", tool_call_id="call_1"),
        ),
        # a user's `name`
        (ChatMessage.user("hi"), ChatMessage("user", "hi", name="alice")),
    ],
)
def test_what_clients_change_when_echoing_is_ignored(
    stored: ChatMessage, echoed: ChatMessage
) -> None:
    assert chain("prev", stored) == chain("prev", echoed)


@pytest.mark.parametrize(
    "changed",
    [
        ChatMessage.assistant(None, (ToolCall("call_2", "get_weather", CALL.arguments),)),
        ChatMessage.assistant(None, (ToolCall("call_1", "get_time", CALL.arguments),)),
        ChatMessage.assistant(None, (ToolCall("call_1", "get_weather", '{"city":"Rome"}'),)),
        ChatMessage.assistant("and some text", (CALL,)),
        ChatMessage.assistant(None, (CALL, CALL)),
        ChatMessage("user", None),
    ],
)
def test_what_the_model_would_see_differently_is_not(changed: ChatMessage) -> None:
    assert chain("prev", ChatMessage.assistant(None, (CALL,))) != chain("prev", changed)


def test_role_matters_even_with_the_same_text() -> None:
    assert chain(None, ChatMessage.user("x")) != chain(None, ChatMessage.system("x"))
    assert chain(None, ChatMessage.user("x")) != chain(None, ChatMessage.assistant("x"))


def test_a_tool_result_is_tied_to_its_call() -> None:
    assert chain(None, ChatMessage.tool("a", "t", "1")) != chain(
        None, ChatMessage.tool("b", "t", "1")
    )


def test_arguments_that_are_not_json_are_compared_as_text() -> None:
    assert canonical_arguments('{"a": 1') == '{"a": 1'
    assert canonical_arguments('{"b": 1, "a": [1, 2]}') == '{"a":[1,2],"b":1}'
    assert canonical_arguments('{"t": "é"}') == json.dumps({"t": "é"}, ensure_ascii=False).replace(
        " ", ""
    )


def test_unstorable_text_still_hashes() -> None:
    assert len(chain(None, ChatMessage.user("\ud800 lone surrogate"))) == FINGERPRINT_LENGTH


def test_resumable_prefixes_end_after_the_last_answer_or_at_the_end_longest_first() -> None:
    transcript = [
        ChatMessage.system("s"),
        ChatMessage.user("u1"),
        ChatMessage.assistant("a1"),
        ChatMessage.user("u2"),
        ChatMessage.assistant(None, (CALL,)),
        ChatMessage.tool("call_1", "get_weather", "18C"),
    ]
    assert resumable_prefixes(transcript) == [6, 5]
    assert resumable_prefixes(transcript[:4]) == [4, 3]
    assert resumable_prefixes(transcript[:3]) == [3]
    assert resumable_prefixes(transcript[:2]) == [2]
