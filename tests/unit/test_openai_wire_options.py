"""The wire format's side of request options: what the body carries, logprobs read from
answers and streams, and an upstream's refusal of a field reaching the client named."""

from __future__ import annotations

import json

from agent_api.domain.chat import ChatMessage, ChatRequest, ToolSpec
from agent_api.domain.errors import InvalidRequest
from agent_api.infrastructure.llm.openai_wire import ChunkAssembler, parse_completion, request_body
from agent_api.infrastructure.llm.upstream_errors import error_for_status

MESSAGES = (ChatMessage.user("hi"),)
TOKEN_A = {"token": "Hel", "logprob": -0.5, "bytes": [72, 101, 108], "top_logprobs": []}
TOKEN_B = {"token": "lo", "logprob": -0.1, "bytes": [108, 111], "top_logprobs": []}


def test_options_are_sent_as_they_are() -> None:
    options = {
        "temperature": 0.1,
        "stop": ["x"],
        "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
        "max_completion_tokens": 40,
    }
    body = request_body(ChatRequest("m", MESSAGES, options=options), stream=False)
    assert {k: body[k] for k in options} == options
    assert "max_tokens" not in body


def test_the_adapters_own_fields_are_never_overridden() -> None:
    options = {"model": "other", "messages": [], "stream": True, "user": "u1"}
    body = request_body(ChatRequest("m", MESSAGES, options=options), stream=False)
    assert body["model"] == "m"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "stream" not in body
    assert body["user"] == "u1"


def test_legacy_fields_still_work_and_give_way_to_options() -> None:
    legacy = ChatRequest("m", MESSAGES, temperature=0.5, max_tokens=9)
    assert request_body(legacy, stream=False)["max_tokens"] == 9
    both = ChatRequest("m", MESSAGES, max_tokens=9, options={"max_completion_tokens": 4})
    body = request_body(both, stream=False)
    assert (body.get("max_tokens"), body["max_completion_tokens"]) == (None, 4)
    assert both.length_bound == 4
    assert legacy.length_bound == 9


def test_a_completions_logprobs_are_kept() -> None:
    logprobs = {"content": [TOKEN_A, TOKEN_B], "refusal": None}
    body = {
        "choices": [
            {"message": {"content": "Hello"}, "finish_reason": "stop", "logprobs": logprobs}
        ]
    }
    assert parse_completion(body, requested_model="m").logprobs == logprobs
    body["choices"][0]["logprobs"] = None
    assert parse_completion(body, requested_model="m").logprobs is None


def test_streamed_logprobs_are_concatenated() -> None:
    assembler = ChunkAssembler("m")
    for text, token in (("Hel", TOKEN_A), ("lo", TOKEN_B)):
        choice = {"index": 0, "delta": {"content": text}, "logprobs": {"content": [token]}}
        assembler.feed({"choices": [choice]})
    assembler.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    result = assembler.result()
    assert result.message.content == "Hello"
    assert result.logprobs == {"content": [TOKEN_A, TOKEN_B], "refusal": None}


def test_a_stream_without_logprobs_has_none() -> None:
    assembler = ChunkAssembler("m")
    assembler.feed({"choices": [{"delta": {"content": "x"}, "logprobs": None}]})
    assert assembler.result().logprobs is None


def test_an_upstream_refusal_naming_a_field_reaches_the_client_with_it() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this "
                "model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        }
    )
    error = error_for_status(400, body, "o3")
    assert isinstance(error, InvalidRequest)
    assert error.param == "max_tokens"
    assert "Use 'max_completion_tokens' instead" in error.message


def test_an_upstream_refusal_without_a_field_stays_generic() -> None:
    for body in ('{"error": {"message": "internal detail"}}', "not json", '{"error": "x"}'):
        error = error_for_status(400, body, "m")
        assert isinstance(error, InvalidRequest)
        assert error.param is None
        assert "internal detail" not in error.message


def test_parallel_tool_calls_goes_only_with_tools() -> None:
    options = {"parallel_tool_calls": False}
    assert "parallel_tool_calls" not in request_body(
        ChatRequest("m", MESSAGES, options=options), stream=False
    )
    tool = ToolSpec("calculator", "math", {"type": "object"})
    with_tools = ChatRequest("m", MESSAGES, (tool,), options=options)
    assert request_body(with_tools, stream=False)["parallel_tool_calls"] is False
