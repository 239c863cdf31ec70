"""The production topology for real: our server process -> a real LiteLLM proxy -> an
OpenAI-compatible upstream (the stub LLM), driven by the official `openai` SDK.

Both the proxy and our server start once for the module (LiteLLM takes seconds to start);
each test resets the stub's records. Without the `litellm` command the module is skipped
loudly, and fails under CI=true.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import live_server, require_service
from tests.e2e.conftest import create_key, login
from tests.litellm_proxy import LiteLLMProxy, LiteLLMUnavailable
from tests.stub_llm import RecordedRequest, Reply, StubLLM

MODELS = ("gpt-4o-mini", "gpt-4o")


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(stub: StubLLM) -> Iterator[LiteLLMProxy]:
    litellm = LiteLLMProxy(stub.base_url, models=MODELS)
    try:
        litellm.start()
    except LiteLLMUnavailable as exc:
        require_service("litellm", str(exc))
    try:
        yield litellm
    finally:
        litellm.stop()


@pytest.fixture(scope="module")
def server(server_pg_url: str, redis_url: str, proxy: LiteLLMProxy) -> Iterator[str]:
    env = {
        "DATABASE_URL": server_pg_url,
        "REDIS_URL": redis_url,
        "LLM_BASE_URL": proxy.url,
        "LLM_API_KEY": proxy.master_key,
        "LLM_MODELS": ",".join(MODELS),
        "LLM_DEFAULT_MODEL": MODELS[0],
        "LLM_MAX_RETRIES": "0",
        "DB_AUTO_MIGRATE": "false",
    }
    with live_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def sdk(server: str) -> OpenAI:
    key = create_key(server, login(server, f"litellm-{uuid.uuid4().hex[:8]}@example.com"))
    return OpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def upstream(stub: StubLLM) -> StubLLM:
    stub.reset()
    return stub


def assert_sent_by_litellm(request: RecordedRequest, proxy: LiteLLMProxy) -> None:
    """The upstream request came from LiteLLM: with the key LiteLLM holds for the upstream
    (never the master key our server sends) and LiteLLM's own OpenAI client, at the path of the
    configured api_base."""
    assert request.headers["authorization"] == "Bearer unused"
    assert proxy.master_key not in str(request.headers)
    assert request.headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert request.path == "/v1/chat/completions"


def test_non_stream_tool_using_turn(sdk: OpenAI, upstream: StubLLM, proxy: LiteLLMProxy) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "What is 1337 * 42?"}]
    )

    assert completion.choices[0].finish_reason == "stop"
    assert "56154" in (completion.choices[0].message.content or "")
    assert completion.model == "gpt-4o"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    # The tool call and then the answer from its result, both relayed by LiteLLM.
    first, second = upstream.requests
    for request in (first, second):
        assert_sent_by_litellm(request, proxy)
        assert request.body["model"] == "gpt-4o"  # LiteLLM's "openai/" prefix is gone
        assert not request.body.get("stream")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["calculator"]
    call = second.body["messages"][-2]["tool_calls"][0]
    assert call["function"]["name"] == "calculator"
    tool_message = second.body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == call["id"]
    assert '"result": 56154' in tool_message["content"]


def test_stream_relays_text_as_it_is_generated(
    sdk: OpenAI, upstream: StubLLM, proxy: LiteLLMProxy
) -> None:
    story = "Once upon a time there was a stream"
    upstream.enqueue(Reply(text=story, chunk_delay=0.1))
    arrivals: list[tuple[float, str]] = []
    last = None
    for chunk in sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        last = chunk
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.monotonic(), chunk.choices[0].delta.content))

    assert "".join(text for _, text in arrivals) == story
    assert len(arrivals) >= 5
    # The stub spaced its 8 words 0.1 s apart: text that arrives spread out was passed on as
    # it came, not buffered by LiteLLM or by us until the end.
    assert arrivals[-1][0] - arrivals[0][0] >= 0.3
    assert last is not None
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens > 0
    (request,) = upstream.requests
    assert_sent_by_litellm(request, proxy)
    assert request.body["stream"] is True


def test_stream_tool_using_turn(sdk: OpenAI, upstream: StubLLM, proxy: LiteLLMProxy) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "What is 1337 * 42?"}],
            stream=True,
        )
    )

    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "56154" in answer
    assert chunks[-1].choices[0].finish_reason == "stop"
    first, second = upstream.requests
    for request in (first, second):
        assert_sent_by_litellm(request, proxy)
        assert request.body["stream"] is True
    # The tool call's arguments, streamed in fragments through LiteLLM, arrived whole.
    call = second.body["messages"][-2]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"expression": "1337 * 42"}'


def test_upstream_refusal_through_litellm(sdk: OpenAI, upstream: StubLLM) -> None:
    upstream.enqueue(
        Reply(status=400, body={"error": {"message": "prompt too long: secret detail"}})
    )
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert "secret detail" not in refused.value.response.text

    upstream.enqueue(Reply(status=500, body={"error": {"message": "upstream secret detail"}}))
    with pytest.raises(openai.APIStatusError) as failed:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert failed.value.status_code == 502
    assert "secret detail" not in failed.value.response.text


def test_client_leaving_mid_stream_stops_the_upstream(server: str, upstream: StubLLM) -> None:
    token = login(server, f"gone-{uuid.uuid4().hex[:8]}@example.com")
    upstream.enqueue(Reply(text=" ".join(f"word{i}" for i in range(200)), chunk_delay=0.05))
    with httpx.stream(
        "POST",
        f"{server}/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "talk"}],
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as response:
        words = 0
        for line in response.iter_lines():
            words += line.startswith("data: ") and "word" in line
            if words == 5:
                break
    # We close our upstream connection (to LiteLLM), and LiteLLM closes its own.
    deadline = time.monotonic() + 10
    while not upstream.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.disconnects, "the upstream kept generating for a client that left"
    assert upstream.disconnects[0].events_sent < 200
    assert upstream.completed == 0
