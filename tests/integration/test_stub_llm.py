"""The stub LLM itself: what the OpenAI SDK and raw HTTP clients see, from sync tests (the
stub runs on its own thread) and as a standalone process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ROOT, free_port
from tests.stub_llm import Reply, StubLLM

CALCULATOR = {
    "type": "function",
    "function": {"name": "calculator", "parameters": {"type": "object"}},
}


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(stub: StubLLM) -> None:
    stub.reset()


@pytest.fixture
def sdk(stub: StubLLM) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stub.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def raw_chunks(stub: StubLLM, body: dict[str, Any]) -> list[Any]:
    """The `data:` payloads of a streamed answer, JSON-decoded except `[DONE]`."""
    with httpx.stream("POST", f"{stub.url}/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    data = [line.removeprefix("data: ") for line in lines]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


def test_a_stream_is_spec_exact(stub: StubLLM) -> None:
    stub.enqueue(Reply(text="Checking now", tool_calls=[("calculator", {"expression": "2+2"})]))
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    *chunks, usage_chunk, done = raw_chunks(stub, body)

    assert done == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all("role" not in d for d in deltas[1:])
    assert "".join(d.get("content") or "" for d in deltas) == "Checking now"
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert set(calls[0]) == {"index", "id", "type", "function"}
    assert calls[0]["function"] == {"name": "calculator", "arguments": ""}
    assert all(
        set(c) == {"index", "function"} and set(c["function"]) == {"arguments"} for c in calls[1:]
    )
    assert "".join(c["function"]["arguments"] for c in calls) == '{"expression": "2+2"}'
    assert deltas[-1] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["usage"] is None for c in chunks)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] > 0
    assert len({c["id"] for c in [*chunks, usage_chunk]}) == 1


def test_without_include_usage_no_usage_chunk_is_sent(stub: StubLLM) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    *chunks, done = raw_chunks(stub, body)

    assert done == "[DONE]"
    assert all(c["choices"] for c in chunks)


def test_the_sdk_accumulates_a_streamed_tool_call_exactly(
    stub: StubLLM, sdk: openai.OpenAI
) -> None:
    with sdk.chat.completions.stream(
        model="m",
        messages=[{"role": "user", "content": "What is 1337 * 42?"}],
        tools=[CALCULATOR],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()

    [call] = final.choices[0].message.tool_calls or []
    assert call.id.startswith("call_")
    assert call.id.count("call_") == 1
    assert call.function.name == "calculator"
    assert json.loads(call.function.arguments) == {"expression": "1337 * 42"}


def test_the_default_answer_follows_a_tool_result(sdk: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "What is 1337 * 42?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "1337 * 42"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"result": 56154}'},
    ]

    answer = sdk.chat.completions.create(model="m", messages=messages, tools=[CALCULATOR])  # type: ignore[list-item]

    assert answer.choices[0].message.content == "1337 * 42 = 56154."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0


def test_without_a_calculator_it_echoes(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "What is 1337 * 42?"}]
    )

    assert answer.choices[0].message.content == "Echo: What is 1337 * 42?"


def test_requests_are_recorded(stub: StubLLM, sdk: openai.OpenAI) -> None:
    sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    [recorded] = stub.requests
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.body["messages"] == [{"role": "user", "content": "hi"}]


def test_a_scripted_error_reaches_the_sdk(stub: StubLLM, sdk: openai.OpenAI) -> None:
    error = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "x"}}
    stub.enqueue(Reply(status=429, body=error, headers={"Retry-After": "7"}))

    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body == error["error"]


def test_models_are_listed(sdk: openai.OpenAI) -> None:
    assert [model.id for model in sdk.models.list()] == ["stub"]


def test_a_client_leaving_mid_stream_is_recorded(stub: StubLLM) -> None:
    stub.enqueue(Reply(text="one two three four", stall_after=2))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    with httpx.stream("POST", f"{stub.url}/chat/completions", json=body) as response:
        next(response.iter_lines())

    deadline = time.monotonic() + 2
    while not stub.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [d.events_sent for d in stub.disconnects] == [2]
    assert stub.completed == 0


def test_a_dropped_stream_is_an_incomplete_response(stub: StubLLM) -> None:
    stub.enqueue(Reply(text="one two three four", drop_after=2))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    with pytest.raises(httpx.RemoteProtocolError):
        raw_chunks(stub, body)


def test_it_runs_standalone() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.stub_llm", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline().decode()
        answer = None
        for _ in range(400):  # up to 20 s on a busy machine
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                )
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert answer is not None
        assert answer.json()["choices"][0]["message"]["content"] == "Echo: hi"
    finally:
        process.terminate()
        process.wait(5)
