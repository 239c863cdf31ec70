"""OpenAICompatibleChatModel against the stub LLM over real HTTP: what it sends, how it
assembles streams, and how upstream refusals become our errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from structlog.testing import capture_logs

from agent_api.domain.chat import (
    ChatMessage,
    ChatRequest,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from agent_api.domain.errors import InvalidRequest, UpstreamFailed, UpstreamTimeout
from agent_api.infrastructure.llm import OpenAICompatibleChatModel
from tests.stub_llm import Reply, StubLLM

HELLO = ChatRequest("gpt-test", (ChatMessage.user("hello"),))
SECRET_DETAIL = "internal-trace-7f3a upstream says: sk-upstream-secret"


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
        stub.url, api_key="sk-our-key", timeout=10, max_retries=2, backoff_base=0.01
    )
    try:
        yield adapter
    finally:
        await adapter.aclose()


async def test_the_request_is_serialised_in_the_openai_format(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    call = ToolCall("call_1", "calculator", '{"expression": "2+2"}')
    request = ChatRequest(
        "gpt-test",
        (
            ChatMessage.system("be brief"),
            ChatMessage.user("what is 2+2?"),
            ChatMessage.assistant(None, (call,)),
            ChatMessage.tool("call_1", "calculator", '{"result": 4}'),
        ),
        (ToolSpec("calculator", "math", {"type": "object"}),),
        temperature=0.2,
        max_tokens=50,
    )

    await model.complete(request)

    sent = stub.requests[0]
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-our-key"
    assert sent.body == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is 2+2?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"result": 4}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "calculator",
                    "description": "math",
                    "parameters": {"type": "object"},
                },
            }
        ],
        "temperature": 0.2,
        "max_tokens": 50,
    }


async def test_a_stream_asks_for_usage(stub: StubLLM, model: OpenAICompatibleChatModel) -> None:
    [_ async for _ in model.stream(HELLO)]

    assert stub.requests[0].body["stream"] is True
    assert stub.requests[0].body["stream_options"] == {"include_usage": True}


async def test_the_base_url_is_used_as_given_and_no_key_sends_no_authorization(
    stub: StubLLM,
) -> None:
    adapter = OpenAICompatibleChatModel(stub.base_url + "/")
    try:
        await adapter.complete(HELLO)
    finally:
        await adapter.aclose()

    assert stub.requests[0].path == "/v1/chat/completions"
    assert "authorization" not in stub.requests[0].headers


async def test_streamed_tool_calls_are_assembled_by_index(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(
        Reply(
            text="Let me check.",
            tool_calls=[
                ("calculator", {"expression": "1337 * 42"}, "call_a"),
                ("web_search", {"query": "python release date"}, "call_b"),
            ],
            argument_chunk=3,
        )
    )

    events = [event async for event in model.stream(HELLO)]

    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(fragments) > 10, "arguments arrived split across many chunks"
    assert [(f.index, f.id, f.name) for f in fragments if f.id] == [
        (0, "call_a", "calculator"),
        (1, "call_b", "web_search"),
    ]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.result.message.content == "Let me check."
    assert end.result.message.tool_calls == (
        ToolCall("call_a", "calculator", '{"expression": "1337 * 42"}'),
        ToolCall("call_b", "web_search", '{"query": "python release date"}'),
    )
    assert end.result.finish_reason == "tool_calls"


async def test_a_stream_without_usage_reports_zero_usage(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text="no usage here", send_usage=False))

    events = [event async for event in model.stream(HELLO)]

    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.result.message.content == "no usage here"
    assert end.result.usage.total_tokens == 0


async def test_usage_and_finish_reason_come_from_the_upstream(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(text="cut", usage=(120, 7), finish_reason="length"), Reply(text="x"))

    result = await model.complete(HELLO)

    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (120, 7)
    assert result.finish_reason == "length"


async def test_an_upstream_that_ignores_stream_true_is_replayed_as_events(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "whole"},
                "finish_reason": "stop",
            }
        ],
    }
    stub.enqueue(Reply(status=200, body=body))
    stub.enqueue(Reply(status=200, body=body))

    events = [event async for event in model.stream(HELLO)]

    assert events[0] == TextDelta("whole")
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result == await model.complete(HELLO)


async def test_retries_on_429_and_503_then_succeeds(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(
        Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
        Reply(status=503, body={"error": {"message": "overloaded"}}),
        Reply(text="finally"),
    )

    result = await model.complete(HELLO)

    assert result.message.content == "finally"
    assert len(stub.requests) == 3


async def test_a_stream_is_retried_before_it_starts(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(status=502), Reply(drop_after=0), Reply(text="streamed"))

    events = [event async for event in model.stream(HELLO)]

    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result.message.content == "streamed"
    assert len(stub.requests) == 3


async def test_retries_stop_after_max_retries(stub: StubLLM) -> None:
    stub.enqueue(*[Reply(status=503) for _ in range(3)])
    adapter = OpenAICompatibleChatModel(stub.url, max_retries=1, backoff_base=0.01)
    try:
        with pytest.raises(UpstreamFailed):
            await adapter.complete(HELLO)
    finally:
        await adapter.aclose()

    assert len(stub.requests) == 2


async def test_retry_after_is_honoured(stub: StubLLM, model: OpenAICompatibleChatModel) -> None:
    stub.enqueue(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="ok"))

    await model.complete(HELLO)

    first, second = stub.requests
    assert second.received_at - first.received_at >= 0.9


async def test_retry_after_is_capped(stub: StubLLM) -> None:
    stub.enqueue(Reply(status=429, headers={"Retry-After": "3600"}), Reply(text="ok"))
    adapter = OpenAICompatibleChatModel(stub.url, retry_after_cap=0.05, timeout=30)
    try:
        result = await adapter.complete(HELLO)
    finally:
        await adapter.aclose()

    assert result.message.content == "ok"
    first, second = stub.requests
    assert second.received_at - first.received_at < 10


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (400, {"error": {"message": SECRET_DETAIL}}, InvalidRequest, "refused the request"),
        (
            400,
            {"error": {"message": SECRET_DETAIL, "code": "context_length_exceeded"}},
            InvalidRequest,
            "too long",
        ),
        (401, {"error": {"message": SECRET_DETAIL}}, UpstreamFailed, "credentials"),
        (404, {"error": {"message": SECRET_DETAIL}}, UpstreamFailed, "does not serve model"),
        (418, SECRET_DETAIL, UpstreamFailed, "status 418"),
        (500, SECRET_DETAIL, UpstreamFailed, "failed"),
        (504, SECRET_DETAIL, UpstreamTimeout, "timed out"),
    ],
)
async def test_upstream_refusals_map_to_our_errors_without_the_body(
    stub: StubLLM, status: int, body: object, error: type[Exception], message: str
) -> None:
    stub.enqueue(Reply(status=status, body=body))
    adapter = OpenAICompatibleChatModel(stub.url, max_retries=0)
    try:
        with pytest.raises(error) as raised:
            await adapter.complete(HELLO)
    finally:
        await adapter.aclose()

    assert message in str(raised.value)
    assert "7f3a" not in str(raised.value)
    assert "sk-upstream" not in str(raised.value)


async def test_upstream_errors_are_logged_truncated_without_our_key(stub: StubLLM) -> None:
    stub.enqueue(Reply(status=500, body="echoing your key sk-our-key " + "x" * 5000))
    with capture_logs() as logs:
        adapter = OpenAICompatibleChatModel(stub.url, api_key="sk-our-key", max_retries=0)
        try:
            with pytest.raises(UpstreamFailed):
                await adapter.complete(HELLO)
        finally:
            await adapter.aclose()

    [entry] = [e for e in logs if e["event"] == "llm upstream error"]
    assert entry["log_level"] == "warning"
    assert entry["status"] == 500
    assert len(entry["body"]) <= 500
    assert "sk-our-key" not in json.dumps(logs)


async def test_a_mid_stream_error_event_fails_without_its_text(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    error = json.dumps({"error": {"message": SECRET_DETAIL, "type": "server_error"}})
    stub.enqueue(Reply(raw_stream=[f"data: {error}\n\n".encode()]))

    with pytest.raises(UpstreamFailed) as raised:
        [_ async for _ in model.stream(HELLO)]

    assert "7f3a" not in str(raised.value)


async def test_an_invalid_json_answer_is_an_upstream_failure(
    stub: StubLLM, model: OpenAICompatibleChatModel
) -> None:
    stub.enqueue(Reply(status=200, body="<html>gateway</html>"))

    with pytest.raises(UpstreamFailed):
        await model.complete(HELLO)


async def test_an_unreachable_upstream_is_an_upstream_failure() -> None:
    from tests.conftest import free_port

    adapter = OpenAICompatibleChatModel(
        f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_base=0.01
    )
    try:
        with pytest.raises(UpstreamFailed):
            await adapter.complete(HELLO)
    finally:
        await adapter.aclose()
