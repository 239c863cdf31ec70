"""How OpenAICompatibleChatModel reads event streams that real upstreams send: every SSE
framing the standard allows, arbitrary network splits, and tool-call quirks of some servers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_api.domain.chat import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    StreamEnd,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from agent_api.infrastructure.llm import OpenAICompatibleChatModel
from agent_api.infrastructure.llm.sse import SSEDecoder
from tests.stub_llm import Reply, StubLLM

HELLO = ChatRequest("gpt-test", (ChatMessage.user("hello"),))


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture
async def model(stub: StubLLM) -> AsyncIterator[OpenAICompatibleChatModel]:
    adapter = OpenAICompatibleChatModel(stub.url, timeout=10)
    try:
        yield adapter
    finally:
        await adapter.aclose()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return json.dumps({"id": "c1", "model": "gpt-test", "choices": choices, **extra})


def frames(*payloads: str, eol: str = "\n") -> bytes:
    return "".join(f"data: {p}{eol}{eol}" for p in payloads).encode()


async def result_of(
    model: OpenAICompatibleChatModel, stub: StubLLM, body: list[bytes]
) -> ChatResult:
    stub.enqueue(Reply(raw_stream=body))
    events = [event async for event in model.stream(HELLO)]
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    end = events[-1]
    assert isinstance(end, StreamEnd)
    return end.result


TEXT_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": " world"}),
    chunk({}, "stop"),
    chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    "[DONE]",
]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(frames(*TEXT_STREAM), id="plain"),
        pytest.param(frames(*TEXT_STREAM, eol="\r\n"), id="crlf"),
        pytest.param(frames(*TEXT_STREAM, eol="\r"), id="cr"),
        pytest.param(
            "".join(f"data:{p}\n\n" for p in TEXT_STREAM).encode(), id="no-space-after-colon"
        ),
        pytest.param(
            b": ping\n\nevent: message\nid: 7\nretry: 100\n" + frames(*TEXT_STREAM),
            id="comments-and-other-fields",
        ),
        pytest.param(
            "".join(
                "data: " + p.replace(", ", ",\ndata: ") + "\n\n"
                if p != "[DONE]"
                else "data: [DONE]\n\n"
                for p in TEXT_STREAM
            ).encode(),
            id="multi-line-data",
        ),
    ],
)
async def test_every_sse_framing_gives_the_same_answer(
    stub: StubLLM, model: OpenAICompatibleChatModel, body: bytes
) -> None:
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):  # whole, byte by byte
        result = await result_of(model, stub, pieces)

        assert result.message.content == "Hello world"
        assert result.usage == Usage(3, 2)
        assert result.finish_reason == "stop"


async def test_nothing_after_done_is_read(stub: StubLLM, model: OpenAICompatibleChatModel) -> None:
    body = frames(*TEXT_STREAM) + b"data: {not json\n\n"

    result = await result_of(model, stub, [body])

    assert result.message.content == "Hello world"


async def test_usage_on_the_last_choice_chunk_is_read(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    body = frames(chunk({"content": "hi"}), chunk({}, "stop", usage=usage), "[DONE]")

    result = await result_of(model, stub, [body])

    assert result.usage == Usage(9, 1)


async def test_a_repeated_id_and_name_are_not_concatenated(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    call = {"index": 0, "id": "call_1", "type": "function"}
    body = frames(
        chunk({"tool_calls": [{**call, "function": {"name": "calculator", "arguments": '{"ex'}}]}),
        chunk(
            {
                "tool_calls": [
                    {**call, "function": {"name": "calculator", "arguments": 'pression": "2+2"}'}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    stub.enqueue(Reply(raw_stream=[body]))

    events = [event async for event in model.stream(HELLO)]

    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert fragments == [
        ToolCallDelta(0, "call_1", "calculator", '{"ex'),
        ToolCallDelta(0, None, None, 'pression": "2+2"}'),
    ]
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result.message.tool_calls == (
        ToolCall("call_1", "calculator", '{"expression": "2+2"}'),
    )


async def test_parallel_calls_sharing_one_index_are_told_apart_by_id(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    body = frames(
        chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}
        ),
        chunk(
            {"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{"}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    )

    result = await result_of(model, stub, [body])

    assert result.message.tool_calls == (ToolCall("a", "f", "{}"), ToolCall("b", "g", "{}"))


async def test_tool_call_quirks_are_tolerated(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    # No index, no id, arguments as an object, the name only in the second fragment.
    body = frames(
        chunk({"tool_calls": [{"function": {"arguments": {"x": 1}}}]}),
        chunk({"tool_calls": [{"function": {"name": "late"}}]}),
        chunk({}, "function_call"),
        "[DONE]",
    )

    result = await result_of(model, stub, [body])

    [call] = result.message.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("late", {"x": 1})
    assert call.id.startswith("call_")
    assert result.finish_reason == "tool_calls"


async def test_an_unknown_finish_reason_becomes_stop(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    body = frames(chunk({"content": "done"}, "eos"), "[DONE]")

    result = await result_of(model, stub, [body])

    assert result.finish_reason == "stop"


@settings(deadline=None)  # a busy machine must not turn a slow example into a failure
@given(
    events=st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"])), max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_the_decoder_is_indifferent_to_how_bytes_are_split(
    events: list[str], cuts: list[int]
) -> None:
    body = "".join(f"data: {e}\r\n\r\n" for e in events).encode()
    decoder = SSEDecoder()
    decoded: list[str] = []
    last = 0
    for cut in sorted({min(c, len(body)) for c in cuts}):
        decoded += decoder.feed(body[last:cut])
        last = cut
    decoded += decoder.feed(body[last:]) + decoder.close()

    assert decoded == events
