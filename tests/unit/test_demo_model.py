from __future__ import annotations

import json

import pytest

from agent_api.domain.chat import (
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    DeltaAccumulator,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from agent_api.infrastructure.llm.demo import DemoChatModel, find_expression, find_search_terms

CALCULATOR = ToolSpec("calculator", "Evaluate arithmetic.", {"type": "object"})
WEB_SEARCH = ToolSpec("web_search", "Search the web.", {"type": "object"})
BOTH = (CALCULATOR, WEB_SEARCH)


def ask(text: str, tools: tuple[ToolSpec, ...] = BOTH, **kwargs: int) -> ChatRequest:
    return ChatRequest("demo", (ChatMessage.user(text),), tools, **kwargs)


async def answer(request: ChatRequest) -> ChatResult:
    return await DemoChatModel().complete(request)


async def after_tool(text: str, tool_output: str) -> ChatResult:
    """The demo's answer once its tool call for `text` returned `tool_output`."""
    request = ask(text)
    asked = await answer(request)
    call = asked.message.tool_calls[0]
    messages = (*request.messages, asked.message, ChatMessage.tool(call.id, call.name, tool_output))
    return await answer(ChatRequest("demo", messages, BOTH))


async def test_arithmetic_is_a_calculator_call() -> None:
    result = await answer(ask("What is 1337 * 42?"))

    [call] = result.message.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("calculator", {"expression": "1337 * 42"})
    assert call.id.startswith("call_")
    assert result.finish_reason == "tool_calls"
    assert result.message.content is None
    assert result.model == "demo"


async def test_search_is_a_web_search_call() -> None:
    result = await answer(ask("Please search for the latest Python release?"))

    [call] = result.message.tool_calls
    assert (call.name, json.loads(call.arguments)) == (
        "web_search",
        {"query": "the latest Python release"},
    )


@pytest.mark.parametrize(
    ("text", "tools"),
    [("What is 1337 * 42?", (WEB_SEARCH,)), ("search cats", (CALCULATOR,)), ("hello", BOTH)],
)
async def test_without_the_tool_it_needs_it_echoes(text: str, tools: tuple[ToolSpec, ...]) -> None:
    result = await answer(ask(text, tools))

    assert result.message.tool_calls == ()
    assert result.message.content
    assert f'You said: "{text}"' in result.message.content
    assert result.finish_reason == "stop"


async def test_the_echo_offers_only_the_tools_it_has() -> None:
    result = await answer(ask("hello", (CALCULATOR,)))

    assert result.message.content
    assert "1337 * 42" in result.message.content
    assert "search" not in result.message.content


async def test_it_answers_from_a_calculator_result() -> None:
    result = await after_tool("What is 1337 * 42?", '{"expression": "1337 * 42", "result": 56154}')

    assert result.message.content == "1337 * 42 = 56154."
    assert result.finish_reason == "stop"


async def test_a_result_without_its_expression_takes_it_from_the_call() -> None:
    result = await after_tool("What is 2 + 2?", '{"result": 4}')

    assert result.message.content == "2 + 2 = 4."


async def test_it_summarises_search_results() -> None:
    results = {
        "results": [
            {"title": "Python 3.14", "url": "https://python.org/3.14", "description": "..."},
            {"title": "News", "url": "https://example.com"},
        ]
    }

    result = await after_tool("search python release", json.dumps(results))

    assert result.message.content == (
        'I found 2 results for "python release": Python 3.14 (https://python.org/3.14); '
        "News (https://example.com)."
    )


async def test_empty_search_results_are_said_so() -> None:
    result = await after_tool("search zzz", '{"results": []}')

    assert result.message.content == 'I found nothing for "zzz".'


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            '{"error": {"code": "TOOL_FAILED", "message": "division by zero"}}',
            "The calculator tool failed: division by zero.",
        ),
        ('{"error": "division by zero"}', "The calculator tool failed: division by zero."),
        (
            "rejected by the user: too risky",
            "The calculator call was rejected by the user (too risky), so I did not run it.",
        ),
        ("plain words", "The calculator tool said: plain words."),
        ('["odd"]', 'The calculator tool returned: ["odd"].'),
    ],
)
async def test_errors_rejections_and_odd_outputs_are_put_in_words(
    output: str, expected: str
) -> None:
    result = await after_tool("What is 1 / 0?", output)

    assert result.message.content == expected


async def test_several_tool_results_are_all_answered() -> None:
    request = ask("What is 1 + 1?")
    messages = (
        *request.messages,
        ChatMessage.tool("a", "calculator", '{"expression": "1 + 1", "result": 2}'),
        ChatMessage.tool("b", "calculator", '{"expression": "2 * 3", "result": 6}'),
    )

    result = await answer(ChatRequest("demo", messages, BOTH))

    assert result.message.content == "1 + 1 = 2. 2 * 3 = 6."


async def test_it_is_deterministic() -> None:
    assert await answer(ask("What is 1337 * 42?")) == await answer(ask("What is 1337 * 42?"))


async def test_max_tokens_cuts_the_answer() -> None:
    result = await answer(ask("one two three four five six", max_tokens=3))

    assert result.message.content == 'You said: "one'
    assert result.finish_reason == "length"


async def test_usage_counts_words_and_grows_with_the_history() -> None:
    short = await answer(ask("hi"))
    longer = await answer(ask("hi " * 50))

    assert short.usage.completion_tokens == len((short.message.content or "").split())
    assert longer.usage.prompt_tokens == short.usage.prompt_tokens + 49


async def test_a_conversation_ending_with_the_assistant_gets_an_offer_to_help() -> None:
    request = ChatRequest("demo", (ChatMessage.user("hi"), ChatMessage.assistant("hello")))

    assert (await answer(request)).message.content == "How can I help?"


async def stream(request: ChatRequest) -> list[ChatEvent]:
    return [event async for event in DemoChatModel().stream(request)]


async def test_text_streams_word_by_word() -> None:
    events = await stream(ask("hello there"))

    *deltas, end = events
    assert isinstance(end, StreamEnd)
    assert all(isinstance(d, TextDelta) for d in deltas)
    texts = [d.text for d in deltas if isinstance(d, TextDelta)]
    assert texts[:3] == ["You", " said:", ' "hello']
    assert "".join(texts) == end.result.message.content


async def test_a_tool_call_streams_as_spec_shaped_fragments() -> None:
    events = await stream(ask("What is 1337 * 42?"))

    *deltas, end = events
    assert isinstance(end, StreamEnd)
    fragments = [d for d in deltas if isinstance(d, ToolCallDelta)]
    assert len(fragments) == len(deltas) > 2
    call = end.result.message.tool_calls[0]
    assert fragments[0] == ToolCallDelta(0, call.id, "calculator", "")
    assert all(f.index == 0 and f.id is None and f.name is None for f in fragments[1:])
    accumulator = DeltaAccumulator()
    for fragment in fragments:
        accumulator.add(fragment)
    assert accumulator.message() == end.result.message


async def test_the_stream_ends_with_what_complete_returns() -> None:
    request = ask("What is 1337 * 42?")

    events = await stream(request)

    assert events[-1] == StreamEnd(await answer(request))


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("What is 1337 * 42?", "1337 * 42"),
        ("compute 2+2 please", "2+2"),
        ("What's (3 + 4) * 2?", "(3 + 4) * 2"),
        ("and 2 ** 10, quickly", "2 ** 10"),
        ("sqrt(16) please", "sqrt(16)"),
        ("-5 + 10", "-5 + 10"),
        ("I have 3 apples", None),
        ("see you 2024-01-02", None),
        ("version 3.11", None),
        ("(unbalanced 1 + 2", "1 + 2"),
    ],
)
def test_find_expression(text: str, expression: str | None) -> None:
    assert find_expression(text) == expression


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("search cats", "cats"),
        ("Search the web for Python 3.14 news!", "Python 3.14 news"),
        ("could you search about 'llamas'?", "llamas"),
        ("research is fun", None),
        ("search", None),
    ],
)
def test_find_search_terms(text: str, terms: str | None) -> None:
    assert find_search_terms(text) == terms


async def test_the_length_bound_comes_from_the_clients_field() -> None:
    request = ChatRequest(
        "demo", (ChatMessage.user("one two three four"),), options={"max_completion_tokens": 2}
    )
    result = await answer(request)
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 2


async def test_stop_ends_the_answer_before_the_first_sequence() -> None:
    for stop in ("demo", ["zzz", "demo"]):
        request = ChatRequest("demo", (ChatMessage.user("hi"),), options={"stop": stop})
        result = await answer(request)
        assert result.message.content == 'You said: "hi". I am the offline '
        assert result.finish_reason == "stop"


async def test_logprobs_spell_the_answer_when_asked() -> None:
    options = {"logprobs": True, "top_logprobs": 2}
    result = await answer(ChatRequest("demo", (ChatMessage.user("hi"),), options=options))
    tokens = result.logprobs["content"]
    assert "".join(t["token"] for t in tokens) == result.message.content
    assert all(t["logprob"] == 0.0 and len(t["top_logprobs"]) == 1 for t in tokens)
    assert (await answer(ask("hi"))).logprobs is None


async def test_any_other_option_is_accepted() -> None:
    options = {"temperature": 2, "seed": 1, "response_format": {"type": "json_object"}, "x": {}}
    result = await answer(ChatRequest("demo", (ChatMessage.user("hi"),), options=options))
    assert result.message.content == (await answer(ask("hi", ()))).message.content
