"""OpenAICompatibleChatModel when the upstream is slow, breaks, or the consumer leaves:
time limits, no retry once streaming started, and prompt cancellation of the upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from agent_api.domain.chat import ChatEvent, ChatMessage, ChatRequest, StreamEnd, TextDelta
from agent_api.domain.errors import UpstreamFailed, UpstreamTimeout
from agent_api.infrastructure.llm import OpenAICompatibleChatModel
from tests.stub_llm import Reply, StubLLM

HELLO = ChatRequest("gpt-test", (ChatMessage.user("hello"),))
LONG_TEXT = " ".join(f"word{i}" for i in range(40))


async def collect(stream: AsyncIterator[ChatEvent], into: list[ChatEvent]) -> None:
    async for event in stream:
        into.append(event)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(stub: StubLLM) -> None:
    stub.reset()


@pytest.fixture
async def model(stub: StubLLM) -> AsyncIterator[OpenAICompatibleChatModel]:
    adapter = OpenAICompatibleChatModel(
        stub.url, timeout=0.6, stream_idle_timeout=0.3, max_retries=2, backoff_base=0.01
    )
    try:
        yield adapter
    finally:
        await adapter.aclose()


async def test_a_slow_answer_is_an_upstream_timeout(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text="too late", delay=5))

    with pytest.raises(UpstreamTimeout):
        await model.complete(HELLO)

    assert len(stub.requests) == 1, "a timeout is not retried"
    assert await stub.wait_disconnects(1, timeout=1.0), "the upstream request was abandoned"


async def test_a_slow_stream_start_is_an_upstream_timeout(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text="too late", delay=5))

    with pytest.raises(UpstreamTimeout):
        [_ async for _ in model.stream(HELLO)]


async def test_silence_between_chunks_is_an_upstream_timeout(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text=LONG_TEXT, stall_after=3))
    received: list[ChatEvent] = []

    with pytest.raises(UpstreamTimeout):
        await collect(model.stream(HELLO), received)

    assert received, "what arrived before the silence was delivered"
    assert await stub.wait_disconnects(1, timeout=1.0)


async def test_a_stream_longer_than_the_overall_timeout_is_cut(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text=LONG_TEXT, chunk_delay=0.1))  # each gap under the idle limit

    with pytest.raises(UpstreamTimeout):
        [_ async for _ in model.stream(HELLO)]


async def test_a_dropped_stream_fails_and_is_not_retried(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text=LONG_TEXT, drop_after=4), Reply(text="a retry would get this"))
    received: list[ChatEvent] = []

    with pytest.raises(UpstreamFailed):
        await collect(model.stream(HELLO), received)

    assert any(isinstance(e, TextDelta) for e in received)
    assert not any(isinstance(e, StreamEnd) for e in received)
    assert len(stub.requests) == 1


async def test_a_stream_ending_without_a_finish_fails(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    chunk = b'data: {"choices": [{"index": 0, "delta": {"content": "half"}}]}\n\n'
    stub.enqueue(Reply(raw_stream=[chunk]))

    with pytest.raises(UpstreamFailed, match="ended the answer early"):
        [_ async for _ in model.stream(HELLO)]


async def test_events_are_delivered_while_the_upstream_is_still_sending(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text=LONG_TEXT, stall_after=3))
    stream = model.stream(HELLO)

    first = await anext(stream)

    assert isinstance(first, TextDelta)
    assert stub.completed == 0, "the first event did not wait for the whole answer"
    await stream.aclose()  # type: ignore[attr-defined]


async def test_closing_the_stream_closes_the_upstream_request(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text=LONG_TEXT, stall_after=3))
    stream = model.stream(HELLO)
    await anext(stream)

    await stream.aclose()  # type: ignore[attr-defined]

    assert await stub.wait_disconnects(1, timeout=1.0)
    assert stub.completed == 0


async def test_cancelling_the_consumer_closes_the_upstream_request(stub: StubLLM) -> None:
    # A patient model: only the cancellation can end this stream early.
    adapter = OpenAICompatibleChatModel(stub.url, timeout=60, stream_idle_timeout=60)
    stub.enqueue(Reply(text=LONG_TEXT, stall_after=3))
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in adapter.stream(HELLO):
            started.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(started.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert await stub.wait_disconnects(1, timeout=1.0)
        assert stub.completed == 0
    finally:
        await adapter.aclose()


async def test_the_connection_is_reused_after_a_finished_stream(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    for _ in range(3):
        [_ async for _ in model.stream(HELLO)]
        await model.complete(HELLO)

    assert stub.completed == 6
    assert stub.connections == 1
