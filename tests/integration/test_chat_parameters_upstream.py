"""The Chat Completions fields against a real HTTP upstream (the stub LLM): every forwarded
field reaches it on every model call of a tool-using run, the length budget shrinks from call
to call, an upstream refusal of a field reaches the client naming it, and the upstream's
logprobs reach the client (stream and not)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_api.api.routers.openai_params import FORWARDED
from tests.api.conftest import sse_events
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.stub_llm import Reply, StubLLM

MODEL = "gpt-4o-mini"
CALCULATE = [{"role": "user", "content": "What is 6 * 7?"}]
FIELDS: dict[str, Any] = {
    "temperature": 0.4,
    "top_p": 0.8,
    "max_completion_tokens": 100,
    "stop": ["\n\nEND"],
    "seed": 11,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "logit_bias": {"1234": -50},
    "user": "end-user-1",
    "logprobs": True,
    "top_logprobs": 3,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "description": "the result",
            "schema": {"type": "object", "properties": {"value": {"type": "number"}}},
            "strict": True,
        },
    },
    "reasoning_effort": "medium",
    "metadata": {"team": "search"},
    "service_tier": "flex",
    "modalities": ["text"],
    "verbosity": "high",
    "web_search_options": {"search_context_size": "low"},
    "prompt_cache_key": "cache-1",
    "prompt_cache_options": {"mode": "implicit"},
    "prompt_cache_retention": "24h",
    "safety_identifier": "safe-1",
    "moderation": {"model": "omni-moderation-latest"},
    "parallel_tool_calls": False,
}
TOKENS = [
    {"token": "4", "logprob": -0.01, "bytes": [52], "top_logprobs": []},
    {"token": "2", "logprob": -0.02, "bytes": [50], "top_logprobs": []},
]


def test_the_test_sends_every_forwarded_field() -> None:
    assert set(FIELDS) | {"max_tokens"} == FORWARDED


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture
async def client(tmp_path: Path, stub: StubLLM) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, llm_base_url=stub.url, llm_max_retries=0)
    async with running_app(settings) as c:
        yield c


async def headers_for(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await register_and_login(client))["access_token"])


@pytest.mark.parametrize("stream", [False, True])
async def test_every_forwarded_field_reaches_every_call_of_a_tool_run(
    client: httpx.AsyncClient, stub: StubLLM, stream: bool
) -> None:
    headers = await headers_for(client)
    body = {"model": MODEL, "messages": CALCULATE, "stream": stream, **FIELDS}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    first, second = (r.body for r in stub.requests)
    assert first["tools"]  # the calculator call, then the answer from its result
    assert second["messages"][-1]["role"] == "tool"
    for sent in (first, second):
        unbounded = {k: v for k, v in sent.items() if k != "max_completion_tokens"}
        assert {k: unbounded.get(k) for k in FIELDS if k != "max_completion_tokens"} == {
            k: v for k, v in FIELDS.items() if k != "max_completion_tokens"
        }
        assert "max_tokens" not in sent
    # The stub's calculator call costs 6 completion tokens of the run's 100.
    assert (first["max_completion_tokens"], second["max_completion_tokens"]) == (100, 94)


async def test_an_upstream_refusal_of_a_field_names_it(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await headers_for(client)
    refusal = {
        "error": {
            "message": "Unsupported value: 'temperature' does not support 0.4 with this model.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    }
    stub.enqueue(Reply(status=400, body=refusal))
    body = {"model": MODEL, "messages": CALCULATE, "temperature": 0.4}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "temperature"
    assert "does not support 0.4" in error["message"]


async def test_the_upstreams_logprobs_reach_the_client(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await headers_for(client)
    logprobs = {"content": TOKENS, "refusal": None}
    stub.enqueue(Reply(body=_completion("42", logprobs)))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "logprobs": True}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.json()["choices"][0]["logprobs"] == logprobs

    stub.enqueue(Reply(raw_stream=_stream(["4", "2"], TOKENS)))
    streamed = await client.post(
        "/v1/chat/completions", json={**body, "stream": True}, headers=headers
    )
    chunks = [e for e in sse_events(streamed.text)[:-1] if e["choices"]]
    received = [t for c in chunks for t in (c["choices"][0]["logprobs"] or {}).get("content") or []]
    assert received == TOKENS
    assert chunks[-1]["choices"][0]["logprobs"]["content"] == TOKENS


def _completion(text: str, logprobs: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def _stream(words: list[str], tokens: list[dict[str, Any]]) -> list[bytes]:
    head = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    chunks = [
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": word},
                    "logprobs": {"content": [token], "refusal": None},
                    "finish_reason": None,
                }
            ],
        }
        for word, token in zip(words, tokens, strict=True)
    ]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
