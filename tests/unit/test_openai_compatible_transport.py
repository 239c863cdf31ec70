"""The OpenAI-compatible adapter on an `httpx.MockTransport`: what it sends and how it reads
answers, without a socket. The same behaviour over real HTTP is in
tests/integration/test_openai_compatible*.py."""

from __future__ import annotations

import json

import httpx
import pytest

from agent_api.domain.chat import ChatMessage, ChatRequest, StreamEnd, TextDelta, ToolSpec
from agent_api.domain.errors import InvalidRequest, UpstreamFailed
from agent_api.infrastructure.llm import OpenAICompatibleChatModel

REQUEST = ChatRequest(
    model="gpt-4o-mini",
    messages=(ChatMessage.user("hi"),),
    tools=(ToolSpec("calculator", "math", {"type": "object", "properties": {}}),),
)


def _completion(text: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


async def test_it_posts_the_request_with_the_key_and_reads_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_completion("hello"))

    model = OpenAICompatibleChatModel(
        "http://llm/v1", api_key="sk-upstream", transport=httpx.MockTransport(handler)
    )
    try:
        result = await model.complete(REQUEST)
    finally:
        await model.aclose()

    assert result.message.content == "hello"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 2)
    [sent] = seen
    assert str(sent.url) == "http://llm/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-upstream"
    body = json.loads(sent.content)
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert [t["function"]["name"] for t in body["tools"]] == ["calculator"]
    assert "stream" not in body


async def test_a_retryable_status_is_retried_and_a_refusal_is_not() -> None:
    statuses = iter([503, 200])
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        status = next(statuses)
        return httpx.Response(status, json=_completion("ok") if status == 200 else {"error": {}})

    model = OpenAICompatibleChatModel(
        "http://llm", max_retries=1, backoff_base=0.001, transport=httpx.MockTransport(flaky)
    )
    try:
        assert (await model.complete(REQUEST)).message.content == "ok"
    finally:
        await model.aclose()
    assert calls == 2

    calls = 0

    def refusing(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"error": {"message": "context too long"}})

    model = OpenAICompatibleChatModel(
        "http://llm", max_retries=2, transport=httpx.MockTransport(refusing)
    )
    try:
        with pytest.raises(InvalidRequest):
            await model.complete(REQUEST)
    finally:
        await model.aclose()
    assert calls == 1


async def test_a_streamed_answer_becomes_events_ending_with_the_result() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"}
        )

    model = OpenAICompatibleChatModel("http://llm", transport=httpx.MockTransport(handler))
    try:
        events = [event async for event in model.stream(REQUEST)]
    finally:
        await model.aclose()

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.result.message.content == "Hello"
    assert end.result.usage.completion_tokens == 2


async def test_an_answer_that_is_not_json_is_an_upstream_failure() -> None:
    model = OpenAICompatibleChatModel(
        "http://llm", transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))
    )
    try:
        with pytest.raises(UpstreamFailed):
            await model.complete(REQUEST)
    finally:
        await model.aclose()
