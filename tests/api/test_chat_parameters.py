"""Every Chat Completions field is honoured or refused: refused values answer 400 naming the
field, unknown fields answer OpenAI's "Unrecognized request argument", accepted ones run, and
what the run does with the length budget and logprobs reaches the client."""

from __future__ import annotations

from typing import Any

import httpx
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.api.conftest import auth, sse_events

ASK = [{"role": "user", "content": "hi"}]
CALCULATE = [{"role": "user", "content": "What is 1337 * 42?"}]

REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"n": 2}, "n", "n=1"),
    ({"store": False}, "store", "stores every conversation"),
    ({"stream_options": {"include_usage": True}}, "stream_options", "stream=true"),
    (
        {"stream": True, "stream_options": {"include_obfuscation": True}},
        "stream_options.include_obfuscation",
        "",
    ),
    ({"max_tokens": 5, "max_completion_tokens": 5}, "max_tokens", "not both"),
    ({"top_logprobs": 2}, "top_logprobs", "logprobs=true"),
    ({"modalities": ["text", "audio"]}, "modalities", "audio"),
    ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio", "audio"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction", "tools"),
    ({"functions": [{"name": "f"}]}, "functions", "use tools"),
    ({"function_call": "auto"}, "function_call", "tool_choice"),
    ({"temperature": 3}, "temperature", ""),
    ({"top_p": 1.5}, "top_p", ""),
    ({"presence_penalty": -3}, "presence_penalty", ""),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", ""),
    ({"logit_bias": {"50256": 101}}, "logit_bias.50256", ""),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs", ""),
    ({"metadata": {"k": 1}}, "metadata.k", ""),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", ""),
    ({"service_tier": "gold"}, "service_tier", ""),
    ({"response_format": {"type": "xml"}}, "response_format", ""),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema.json_schema", ""),
    ({"max_tokens": 0}, "max_tokens", ""),
]

ACCEPTED: dict[str, Any] = {
    "temperature": 0.5,
    "top_p": 0.9,
    "max_completion_tokens": 500,
    "stop": "zzz",
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": -0.1,
    "logit_bias": {"50256": -100},
    "user": "user-7",
    "logprobs": True,
    "top_logprobs": 2,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    },
    "reasoning_effort": "low",
    "metadata": {"team": "a"},
    "service_tier": "auto",
    "modalities": ["text"],
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
    "prompt_cache_key": "k1",
    "prompt_cache_retention": "24h",
    "safety_identifier": "s1",
    "n": 1,
    "store": True,
}


async def test_each_refused_value_is_a_400_naming_its_field(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    for fields, param, why in REFUSED:
        body = {"model": "demo", "messages": ASK, **fields}
        response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 400, (fields, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, (fields, error)
        assert why in error["message"], (fields, error)


async def test_an_unknown_field_is_refused_in_openais_words(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    body = {"model": "demo", "messages": ASK, "temprature": 0.2}
    response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "Unrecognized request argument supplied: temprature"
    assert error["param"] == "temprature"
    assert error["type"] == "invalid_request_error"


async def test_every_accepted_field_runs(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    for stream in (False, True):
        body = {"model": "demo", "messages": CALCULATE, "stream": stream, **ACCEPTED}
        if stream:
            body["stream_options"] = {"include_usage": True, "include_obfuscation": False}
        response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 200, response.text
        if not stream:
            assert "56154" in response.json()["choices"][0]["message"]["content"]


async def test_the_answers_logprobs_reach_the_client(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    body = {"model": "demo", "messages": CALCULATE, "logprobs": True, "top_logprobs": 1}
    response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
    completion = ChatCompletion.model_validate(response.json())
    choice = completion.choices[0]
    assert choice.logprobs is not None
    assert choice.logprobs.content
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content

    streamed = await app_client.post(
        "/v1/chat/completions", json={**body, "stream": True}, headers=headers
    )
    chunks = [ChatCompletionChunk.model_validate(e) for e in sse_events(streamed.text)[:-1]]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    tokens = [
        t.token
        for c in chunks
        if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content
        for t in c.choices[0].logprobs.content
    ]
    assert "".join(tokens) == text.split("\n")[-1] == choice.message.content


async def test_without_logprobs_the_choice_has_none(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    body = {"model": "demo", "messages": ASK}
    response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.json()["choices"][0]["logprobs"] is None


async def test_a_spent_budget_ends_the_run_at_length_and_leaves_no_open_call(
    app_client: httpx.AsyncClient,
) -> None:
    headers = await auth(app_client)
    # The demo's calculator call costs 5 tokens: more than the run may spend.
    body = {"model": "demo", "messages": CALCULATE, "max_tokens": 3}
    response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert "tool_calls" not in answer["choices"][0]["message"]
    detail = await app_client.get(f"/v1/conversations/{answer['conversation_id']}", headers=headers)
    messages = detail.json()["data"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert not messages[-1].get("tool_calls")
    # The conversation stays usable.
    again = await app_client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": ASK, "conversation_id": answer["conversation_id"]},
        headers=headers,
    )
    assert again.status_code == 200


async def test_the_budget_bounds_the_answer_of_a_plain_turn(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    body = {"model": "demo", "messages": ASK, "max_completion_tokens": 2}
    response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"].split()) == 2
