"""The official `openai` SDK, unchanged, against a real server process."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import live_server
from tests.e2e.conftest import create_key, login, server_env
from tests.stub_llm import Reply, StubLLM


def client(server: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def api_key(server: str) -> str:
    return create_key(server, login(server, f"sdk-{uuid.uuid4().hex[:8]}@example.com"))


def test_models_list(server: str, api_key: str) -> None:
    models = client(server, api_key).models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini", "gpt-4o"]
    assert client(server, api_key).models.retrieve("gpt-4o").id == "gpt-4o"


def test_non_stream_tool_using_turn(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    completion = client(server, api_key).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 1337 * 42?"}]
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    assert "56154" in (completion.choices[0].message.content or "")
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    # Two LLM calls: the tool call, then the answer from the calculator's result.
    assert len(stub.requests) == 2
    assert stub.requests[0].body["tools"][0]["function"]["name"] == "calculator"
    tool_message = stub.requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert '"result": 56154' in tool_message["content"]


def test_stream_text_and_tool_turns(server: str, api_key: str, stub: StubLLM) -> None:
    sdk = client(server, api_key)
    stub.reset()
    stub.enqueue(Reply(text="Once upon a time there was a stream"))
    chunks = list(
        sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Tell me a story"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Once upon a time there was a stream"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0

    tool_chunks = list(
        sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "What is 6 * 7?"}],
            stream=True,
        )
    )
    answer = "".join(c.choices[0].delta.content or "" for c in tool_chunks if c.choices)
    assert "42" in answer
    assert tool_chunks[-1].choices[0].finish_reason == "stop"


def test_conversation_continued_with_extra_body(server: str, api_key: str, stub: StubLLM) -> None:
    sdk = client(server, api_key)
    first = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "My name is Ada"}]
    )
    conversation_id = first.model_extra["conversation_id"]  # type: ignore[index]
    stub.reset()
    second = sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is my name?"}],
        extra_body={"conversation_id": conversation_id},
    )
    assert second.model_extra["conversation_id"] == conversation_id  # type: ignore[index]
    sent = [m["content"] for m in stub.requests[0].body["messages"] if m["role"] == "user"]
    assert sent == ["My name is Ada", "What is my name?"]


def test_errors_are_the_sdks_typed_exceptions(server: str) -> None:
    token = login(server, f"errors-{uuid.uuid4().hex[:8]}@example.com")
    with pytest.raises(openai.AuthenticationError):
        client(server, "sk-not-a-real-key").models.list()
    limited = create_key(server, token, allowed_models=["gpt-4o"], rate_limit_per_minute=2)
    sdk = client(server, limited)
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError) as limited_error:
        sdk.models.list()
    assert int(limited_error.value.response.headers["retry-after"]) >= 1


def test_upstream_failure_is_a_typed_server_error(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(status=500, body={"error": {"message": "upstream secret detail"}}))
    with pytest.raises(openai.APIStatusError) as caught:
        client(server, api_key).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502
    assert "secret detail" not in caught.value.response.text


def test_approval_through_the_openai_surface(
    server_pg_url: str, redis_url: str, stub: StubLLM
) -> None:
    """A paused call is an ordinary `tool_calls` answer to the SDK; after the owner approves
    it natively, the same conversation continues through the SDK."""
    env = server_env(
        server_pg_url,
        redis_url,
        stub,
        DB_AUTO_MIGRATE="false",
        TOOLS_REQUIRING_APPROVAL="calculator",
    )
    with live_server(env) as base:
        token = login(base, f"approve-sdk-{uuid.uuid4().hex[:8]}@example.com")
        sdk = client(base, token)
        stub.reset()
        paused = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 7 * 6?"}]
        )
        choice = paused.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls or []
        assert call.function.name == "calculator"
        pending = paused.model_extra["pending_approval"]  # type: ignore[index]
        assert pending["tool_calls"][0]["id"] == call.id

        approved = httpx.post(
            f"{base}{pending['approve_url']}",
            json={"approved": True},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert approved.status_code == 200
        assert "42" in approved.json()["data"]["messages"][-1]["content"]

        follow_up = sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "thanks"}],
            extra_body={"conversation_id": pending["conversation_id"]},
        )
        assert follow_up.choices[0].finish_reason == "stop"
        sent = stub.requests[-1].body["messages"]
        assert [m["role"] for m in sent[1:]] == ["user", "assistant", "tool", "assistant", "user"]
