"""`/v1/chat/completions` and `/v1/models` on embedded defaults: the OpenAI wire format."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.api.conftest import auth

CHUNK_KEYS = {"id", "object", "created", "model", "choices", "usage"}


def data_lines(body: str) -> list[str]:
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]


async def test_non_stream_completion_is_an_openai_object(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    response = await app_client.post(
        "/v1/chat/completions",
        json={
            "model": "demo",
            "messages": [{"role": "user", "content": "What is 1337 * 42?"}],
            "temperature": 0.2,
            "user": "user-7",
            "metadata": {"x": "1"},
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "demo"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "56154" in choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert response.headers["x-conversation-id"] == body["conversation_id"]


async def test_stream_is_spec_exact(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    response = await app_client.post(
        "/v1/chat/completions",
        json={
            "model": "demo",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "What is 6 * 7?"}],
        },
        headers=headers,
    )
    assert response.status_code == 200
    lines = data_lines(response.text)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(set(c) >= CHUNK_KEYS for c in chunks)
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    with_choices = [c for c in chunks if c["choices"]]
    assert with_choices[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("role" not in c["choices"][0]["delta"] for c in with_choices[1:])
    assert with_choices[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in with_choices[:-1])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in with_choices)
    assert "42" in text
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_continue_with_body_field_or_header(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    first = await app_client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "hello"}]},
        headers=headers,
    )
    conversation_id = first.json()["conversation_id"]
    by_body = await app_client.post(
        "/v1/chat/completions",
        json={
            "model": "demo",
            "conversation_id": conversation_id,
            "messages": [{"role": "user", "content": "second"}],
        },
        headers=headers,
    )
    by_header = await app_client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "third"}]},
        headers={**headers, "X-Conversation-Id": conversation_id},
    )
    assert (
        by_body.json()["conversation_id"] == by_header.json()["conversation_id"] == conversation_id
    )
    detail = (await app_client.get(f"/v1/conversations/{conversation_id}", headers=headers)).json()
    users = [m["content"] for m in detail["data"]["messages"] if m["role"] == "user"]
    assert users == ["hello", "second", "third"]


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model", None),
        ({"model": "demo", "messages": []}, 400, "messages", None),
        ({"model": "demo", "messages": [{"role": "wizard", "content": "x"}]}, 400, None, None),
        ({"model": "demo", "n": 2, "messages": [{"role": "user", "content": "x"}]}, 400, "n", None),
        (
            {"model": "demo", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            400,
            "messages[0].content[0].image_url",
            None,
        ),
        (
            {"model": "demo", "messages": [{"role": "assistant", "content": "x"}]},
            400,
            "messages",
            None,
        ),
        (
            {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]},
            404,
            None,
            "model_not_found",
        ),
        (
            {
                "model": "demo",
                "conversation_id": str(uuid.uuid4()),
                "messages": [{"role": "user", "content": "x"}],
            },
            404,
            None,
            "not_found",
        ),
        (
            {
                "model": "demo",
                "conversation_id": "nope",
                "messages": [{"role": "user", "content": "x"}],
            },
            400,
            "conversation_id",
            None,
        ),
    ],
)
async def test_bad_requests_are_openai_errors(
    app_client: httpx.AsyncClient,
    body: dict[str, Any],
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    headers = await auth(app_client)
    response = await app_client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code


async def test_malformed_json_and_bad_header_are_400(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    malformed = await app_client.post(
        "/v1/chat/completions",
        content=b"{nope",
        headers={**headers, "content-type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    bad_header = await app_client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "x"}]},
        headers={**headers, "X-Conversation-Id": "zzz"},
    )
    assert bad_header.status_code == 400
    assert bad_header.json()["error"]["param"] == "conversation_id"


async def test_unauthenticated_is_an_openai_401(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/v1/chat/completions", json={"model": "demo", "messages": []})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_approval_surfaces_as_tool_calls_with_the_extension(
    approval_client: httpx.AsyncClient,
) -> None:
    headers = await auth(approval_client)
    response = await approval_client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "What is 2 + 2?"}]},
        headers=headers,
    )
    body = response.json()
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"expression": "2 + 2"}
    pending = body["pending_approval"]
    assert pending["conversation_id"] == body["conversation_id"]
    assert pending["approve_url"] == f"/v1/conversations/{body['conversation_id']}/approve"
    assert pending["tool_calls"] == choice["message"]["tool_calls"]

    streamed = await approval_client.post(
        "/v1/chat/completions",
        json={
            "model": "demo",
            "stream": True,
            "messages": [{"role": "user", "content": "What is 3 + 3?"}],
        },
        headers=headers,
    )
    chunks = [json.loads(line) for line in data_lines(streamed.text)[:-1]]
    tool_deltas = [
        c["choices"][0]["delta"]["tool_calls"]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert tool_deltas[0][0]["index"] == 0
    assert tool_deltas[0][0]["id"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["pending_approval"]["conversation_id"] == chunks[-1]["conversation_id"]


async def test_models_list_and_lookup(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    listed = (await app_client.get("/v1/models", headers=headers)).json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["demo"]
    assert set(listed["data"][0]) == {"id", "object", "created", "owned_by"}
    one = await app_client.get("/v1/models/demo", headers=headers)
    assert one.json()["id"] == "demo"
    missing = await app_client.get("/v1/models/gpt-9", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
