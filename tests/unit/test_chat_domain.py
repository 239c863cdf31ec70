from __future__ import annotations

import pytest

from agent_api.domain.chat import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    DeltaAccumulator,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from agent_api.domain.errors import InvalidRequest

CALL = ToolCall("call_1", "calculator", '{"expression": "2+2"}')


def test_usage_totals_and_sums() -> None:
    a, b = Usage(10, 3), Usage(5, 2)

    assert a.total_tokens == 13
    assert a + b == Usage(15, 5)
    assert sum([a, b, Usage()], Usage()) == Usage(15, 5)
    assert Usage().total_tokens == 0


def test_usage_is_never_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        Usage(-1, 0)


def test_adding_something_else_to_usage_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Usage(1, 1) + 3  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "robot", "content": "x"}, "unknown message role"),
        ({"role": "user", "content": "x", "tool_calls": (CALL,)}, "only assistant"),
        ({"role": "tool", "content": "4"}, "tool_call_id"),
    ],
)
def test_malformed_messages_are_invalid_requests(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as raised:
        ChatMessage(**kwargs)  # type: ignore[arg-type]

    assert raised.value.param == "messages"


def test_message_constructors_fill_the_right_fields() -> None:
    assert ChatMessage.tool("call_1", "calculator", "4") == ChatMessage(
        "tool", "4", tool_call_id="call_1", name="calculator"
    )
    assert ChatMessage.assistant(None, (CALL,)).tool_calls == (CALL,)
    assert ChatMessage.user("hi").role == "user"
    assert ChatMessage.system("be brief").role == "system"


def test_sequences_become_tuples_so_values_stay_immutable() -> None:
    message = ChatMessage("assistant", None, [CALL])  # type: ignore[arg-type]
    request = ChatRequest("m", [ChatMessage.user("hi")], [ToolSpec("t", "d", {})])  # type: ignore[arg-type]

    assert message.tool_calls == (CALL,)
    assert isinstance(request.messages, tuple)
    assert isinstance(request.tools, tuple)


def test_a_request_needs_a_message() -> None:
    with pytest.raises(InvalidRequest, match="at least one message"):
        ChatRequest("m", ())


def test_a_request_knows_which_tools_it_offers() -> None:
    request = ChatRequest("m", (ChatMessage.user("hi"),), (ToolSpec("calculator", "math"),))

    assert request.offers("calculator")
    assert not request.offers("web_search")


def test_a_result_only_has_wire_format_finish_reasons() -> None:
    message = ChatMessage.assistant("hi")
    for reason in ("stop", "tool_calls", "length", "content_filter"):
        ChatResult(message, reason, Usage(), "m")

    with pytest.raises(ValueError, match="finish_reason"):
        ChatResult(message, "interrupted", Usage(), "m")


def test_the_accumulator_assembles_interleaved_deltas() -> None:
    accumulator = DeltaAccumulator()
    events: list[TextDelta | ToolCallDelta] = [
        TextDelta("Let me "),
        TextDelta("check."),
        ToolCallDelta(0, "a", "calculator", ""),
        ToolCallDelta(1, "b", "web_search", '{"query"'),
        ToolCallDelta(0, None, None, '{"expression": '),
        ToolCallDelta(1, None, None, ': "x"}'),
        ToolCallDelta(0, None, None, '"1+1"}'),
    ]
    for event in events:
        accumulator.add(event)

    assert accumulator.has_tool_calls
    assert accumulator.message() == ChatMessage.assistant(
        "Let me check.",
        (
            ToolCall("a", "calculator", '{"expression": "1+1"}'),
            ToolCall("b", "web_search", '{"query": "x"}'),
        ),
    )


def test_the_accumulator_of_nothing_is_an_empty_answer() -> None:
    accumulator = DeltaAccumulator()

    assert not accumulator.has_tool_calls
    assert accumulator.message() == ChatMessage.assistant(None)


def test_a_call_must_start_with_its_id_and_name() -> None:
    with pytest.raises(ValueError, match="without an id and a name"):
        DeltaAccumulator().add(ToolCallDelta(0, None, None, "{}"))


def test_a_tool_call_round_trips_through_the_openai_wire_format() -> None:
    call = ToolCall(id="call_1", name="calculator", arguments='{"expression": "1 + 1"}')
    wire = call.to_openai()
    assert wire == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "calculator", "arguments": '{"expression": "1 + 1"}'},
    }
    assert ToolCall.from_openai(wire) == call
