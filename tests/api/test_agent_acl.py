"""The credential's tool and model permissions inside the agent loop: a forbidden tool is
neither offered to the model nor run when the model names it anyway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.stub_llm import Reply, StubLLM


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture
async def client(tmp_path: Path, stub: StubLLM) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, llm_base_url=stub.url, llm_models="gpt-4o-mini,gpt-4o")
    async with running_app(settings) as c:
        yield c


async def key_for(client: httpx.AsyncClient, **fields: object) -> dict[str, str]:
    session = bearer((await register_and_login(client))["access_token"])
    response = await client.post("/v1/api-keys", json={"name": "k", **fields}, headers=session)
    assert response.status_code == 201, response.text
    return bearer(response.json()["data"]["key"])


async def test_forbidden_tool_is_not_offered_and_not_run(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await key_for(client, allowed_tools=[])
    stub.enqueue(Reply(tool_calls=[("calculator", {"expression": "2+2"}, "call_x")]))
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 2+2?"}]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert "tools" not in stub.requests[0].body or stub.requests[0].body["tools"] == []
    tool_message = stub.requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == "call_x"
    assert json.loads(tool_message["content"])["code"] == "TOOL_FORBIDDEN"


async def test_allowed_tool_is_offered(client: httpx.AsyncClient, stub: StubLLM) -> None:
    headers = await key_for(client, allowed_tools=["calculator"])
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 2*21?"}]},
        headers=headers,
    )
    assert "42" in response.json()["choices"][0]["message"]["content"]
    assert [t["function"]["name"] for t in stub.requests[0].body["tools"]] == ["calculator"]


async def test_model_acl_on_every_path(client: httpx.AsyncClient) -> None:
    headers = await key_for(client, allowed_models=["gpt-4o"])
    models = (await client.get("/v1/models", headers=headers)).json()
    assert [m["id"] for m in models["data"]] == ["gpt-4o"]
    assert (await client.get("/v1/models/gpt-4o-mini", headers=headers)).status_code == 404
    chat = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert chat.status_code == 403
    assert chat.json()["error"]["type"] == "permission_error"
    native = await client.post(
        "/v1/conversations", json={"message": "hi", "model": "gpt-4o-mini"}, headers=headers
    )
    assert native.status_code == 403
    assert native.json()["error"]["code"] == "MODEL_FORBIDDEN"
    allowed = await client.post(
        "/v1/conversations", json={"message": "hi", "model": "gpt-4o"}, headers=headers
    )
    assert allowed.status_code == 201
    implicit = await client.post("/v1/conversations", json={"message": "hi"}, headers=headers)
    assert implicit.json()["data"]["conversation"]["model"] == "gpt-4o"
