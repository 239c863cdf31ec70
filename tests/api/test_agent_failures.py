"""Upstream LLM failures: clear statuses before a stream starts, an error event then [DONE]
after, no upstream body leaked, and the conversation left usable."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import sse_events
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.stub_llm import Reply, StubLLM

SECRET = "upstream-internal-detail"


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture
async def client(tmp_path: Path, stub: StubLLM) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, llm_base_url=stub.url, llm_max_retries=0, llm_timeout="1s")
    async with running_app(settings) as c:
        yield c


async def headers_for(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await register_and_login(client))["access_token"])


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_upstream_error_is_502_without_its_body(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await headers_for(client)
    stub.enqueue(Reply(status=500, body={"error": {"message": SECRET}}))
    response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 502
    assert SECRET not in response.text
    assert response.json()["error"]["type"] == "server_error"
    conversation_id = response.headers["x-conversation-id"]
    detail = await client.get(f"/v1/conversations/{conversation_id}", headers=headers)
    assert detail.json()["data"]["conversation"]["status"] == "failed"
    # A failed run does not lock the conversation.
    again = await client.post(
        "/v1/chat/completions", json={**CHAT, "conversation_id": conversation_id}, headers=headers
    )
    assert again.status_code == 200


async def test_upstream_timeout_is_504_within_the_limit(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await headers_for(client)
    stub.enqueue(Reply(text="late", delay=3))
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 504
    assert time.monotonic() - started < 2.0  # LLM_TIMEOUT (1 s) + 1 s
    assert response.json()["error"]["code"] == "upstream_timeout"


async def test_openai_stream_failure_is_an_error_event_then_done(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await headers_for(client)
    stub.enqueue(Reply(status=503, body=SECRET))
    response = await client.post(
        "/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers
    )
    assert response.status_code == 200
    assert SECRET not in response.text
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    error = json.loads(lines[-2])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "server_error"


async def test_native_stream_failure_is_an_error_event_then_done(
    client: httpx.AsyncClient, stub: StubLLM
) -> None:
    headers = await headers_for(client)
    stub.enqueue(Reply(text="partial answer then", drop_after=2))
    response = await client.post(
        "/v1/conversations", json={"message": "hi", "stream": True}, headers=headers
    )
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert events[-2]["type"] == "error"
    assert events[-2]["code"] == "UPSTREAM_ERROR"


async def test_a_chat_whose_history_cannot_be_stored_leaves_no_running_conversation(
    app_client: httpx.AsyncClient, app_db: AsyncEngine
) -> None:
    headers = await headers_for(app_client)
    async with app_db.begin() as conn:
        # The database refuses this one message, after the conversation row is written.
        await conn.execute(
            text(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages "
                "WHEN NEW.content = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    history = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "poison"},
        {"role": "user", "content": "second"},
    ]
    answer = await app_client.post(
        "/v1/chat/completions", json={"model": "demo", "messages": history}, headers=headers
    )
    listed = await app_client.get("/v1/conversations", headers=headers)
    assert answer.status_code == 500
    conversations = listed.json()["data"]["conversations"]
    assert [c["status"] for c in conversations] == ["failed"]
