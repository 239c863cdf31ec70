"""The ChatModel contract, passed by every adapter: the offline demo model, and the
OpenAI-compatible adapter talking to the stub LLM over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from agent_api.application.ports import ChatModel
from agent_api.domain.chat import (
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from agent_api.infrastructure.llm import DemoChatModel, OpenAICompatibleChatModel
from tests.stub_llm import StubLLM

CALCULATOR = ToolSpec(
    "calculator",
    "Evaluate an arithmetic expression.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
QUESTION = ChatMessage.user("What is 1337 * 42?")


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture(params=["demo", "openai"])
async def model(request: pytest.FixtureRequest, stub: StubLLM) -> AsyncIterator[ChatModel]:
    if request.param == "demo":
        yield DemoChatModel()
        return
    adapter = OpenAICompatibleChatModel(stub.url, timeout=10)
    try:
        yield adapter
    finally:
        await adapter.aclose()


def _model_id(model: ChatModel) -> str:
    return "demo" if isinstance(model, DemoChatModel) else "stub-model"


async def _events(model: ChatModel, request: ChatRequest) -> list[ChatEvent]:
    return [event async for event in model.stream(request)]


def _assemble(events: list[ChatEvent]) -> ChatMessage:
    """The message the deltas spell, assembled here independently of the adapters."""
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls: dict[int, list[str]] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            if event.index not in calls:
                assert event.id, "the first fragment carries the id"
                assert event.name, "the first fragment carries the name"
                calls[event.index] = [event.id, event.name, event.arguments]
            else:
                assert event.id is None, "only the first fragment has the id"
                assert event.name is None, "only the first fragment has the name"
                calls[event.index][2] += event.arguments
    assert sorted(calls) == list(range(len(calls))), "indexes are 0-based and contiguous"
    tool_calls = tuple(ToolCall(*calls[i]) for i in sorted(calls))
    return ChatMessage.assistant(text or None, tool_calls)


async def _ask_calculator(model: ChatModel) -> tuple[ChatRequest, ChatResult]:
    request = ChatRequest(_model_id(model), (QUESTION,), (CALCULATOR,))
    return request, await model.complete(request)


def _with_tool_result(request: ChatRequest, asked: ChatResult, content: str) -> ChatRequest:
    call = asked.message.tool_calls[0]
    messages = (*request.messages, asked.message, ChatMessage.tool(call.id, call.name, content))
    return ChatRequest(request.model, messages, request.tools)


async def test_a_plain_message_gets_a_text_answer(model: ChatModel) -> None:
    result = await model.complete(ChatRequest(_model_id(model), (ChatMessage.user("hello there"),)))

    assert result.message.role == "assistant"
    assert result.message.content
    assert "hello there" in result.message.content
    assert result.message.tool_calls == ()
    assert result.finish_reason == "stop"


async def test_arithmetic_with_a_calculator_offered_is_a_calculator_call(model: ChatModel) -> None:
    _, result = await _ask_calculator(model)

    assert result.finish_reason == "tool_calls"
    assert not result.message.content
    [call] = result.message.tool_calls
    assert call.name == "calculator"
    assert call.id
    assert json.loads(call.arguments) == {"expression": "1337 * 42"}


async def test_the_answer_comes_from_the_tool_result(model: ChatModel) -> None:
    request, asked = await _ask_calculator(model)
    follow_up = _with_tool_result(request, asked, '{"expression": "1337 * 42", "result": 56154}')

    result = await model.complete(follow_up)

    assert result.finish_reason == "stop"
    assert result.message.tool_calls == ()
    assert result.message.content
    assert "56154" in result.message.content


@pytest.mark.parametrize("scenario", ["text", "tool_call", "tool_result"])
async def test_a_stream_is_deltas_then_one_stream_end_equal_to_complete(
    model: ChatModel, scenario: str
) -> None:
    request = ChatRequest(_model_id(model), (ChatMessage.user("tell me a story"),))
    if scenario != "text":
        request, asked = await _ask_calculator(model)
        if scenario == "tool_result":
            request = _with_tool_result(
                request, asked, '{"expression": "1337 * 42", "result": 56154}'
            )

    events = await _events(model, request)
    completed = await model.complete(request)

    *deltas, last = events
    assert isinstance(last, StreamEnd)
    assert deltas, "an answer streams at least one delta"
    assert all(isinstance(e, TextDelta | ToolCallDelta) for e in deltas)
    assert last.result == completed
    assert _assemble(deltas) == last.result.message


async def test_text_streams_in_several_deltas(model: ChatModel) -> None:
    request = ChatRequest(_model_id(model), (ChatMessage.user("one two three four"),))

    deltas = [e for e in await _events(model, request) if isinstance(e, TextDelta)]

    assert len(deltas) > 3


async def test_usage_is_plausible_and_sums(model: ChatModel) -> None:
    request, asked = await _ask_calculator(model)
    answered = await model.complete(
        _with_tool_result(request, asked, '{"expression": "1337 * 42", "result": 56154}')
    )

    for usage in (asked.usage, answered.usage):
        assert usage.prompt_tokens > 0
        assert usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert answered.usage.prompt_tokens > asked.usage.prompt_tokens, "the history grew"
    run = sum((asked.usage, answered.usage), Usage())
    assert run.prompt_tokens == asked.usage.prompt_tokens + answered.usage.prompt_tokens
    assert run.completion_tokens == asked.usage.completion_tokens + answered.usage.completion_tokens
    assert run.total_tokens == asked.usage.total_tokens + answered.usage.total_tokens


async def test_the_result_names_the_model(model: ChatModel) -> None:
    result = await model.complete(ChatRequest(_model_id(model), (ChatMessage.user("hi"),)))

    assert result.model == _model_id(model)
