"""The native conversation API on embedded defaults (SQLite, demo model, calculator)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent_api.infrastructure.db.schema import conversations, tool_executions
from tests.api.conftest import auth, sse_events
from tests.conftest import make_settings, running_app, wait_until


async def test_a_tool_using_turn_is_stored_in_order(
    app_client: httpx.AsyncClient, app_db: AsyncEngine
) -> None:
    headers = await auth(app_client)
    created = await app_client.post(
        "/v1/conversations", json={"message": "What is 1337 * 42?"}, headers=headers
    )
    assert created.status_code == 201, created.text
    turn = created.json()["data"]
    assert turn["status"] == "active"
    assert [m["role"] for m in turn["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert "56154" in turn["messages"][-1]["content"]
    assert turn["usage"]["total_tokens"] > 0
    conversation_id = turn["conversation"]["id"]
    assert created.headers["x-conversation-id"] == conversation_id

    got = await app_client.get(f"/v1/conversations/{conversation_id}", headers=headers)
    detail = got.json()["data"]
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "tool", "assistant"]
    call = detail["messages"][1]["tool_calls"][0]
    assert call["function"]["name"] == "calculator"
    assert detail["messages"][2]["tool_call_id"] == call["id"]
    assert json.loads(detail["messages"][2]["content"])["result"] == 56154
    assert detail["pending_approval"] is None
    conversation = detail["conversation"]
    assert (conversation["message_count"], conversation["tool_call_count"]) == (4, 1)
    assert conversation["total_tokens"] == turn["usage"]["total_tokens"]

    async with app_db.connect() as conn:
        rows = (await conn.execute(select(tool_executions))).all()
    assert [(str(r.conversation_id), r.tool_call_id, r.status) for r in rows] == [
        (conversation_id, call["id"], "succeeded")
    ]


async def test_continue_list_page_and_delete(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    ids = []
    for i in range(3):
        r = await app_client.post(
            "/v1/conversations", json={"message": f"hello {i}"}, headers=headers
        )
        ids.append(r.json()["data"]["conversation"]["id"])
    again = await app_client.post(
        f"/v1/conversations/{ids[0]}/messages", json={"message": "and again"}, headers=headers
    )
    assert again.status_code == 200
    assert [m["role"] for m in again.json()["data"]["messages"]] == ["user", "assistant"]

    page = (await app_client.get("/v1/conversations?limit=2", headers=headers)).json()["data"]
    assert [c["id"] for c in page["conversations"]] == [ids[0], ids[2]]
    rest = await app_client.get(
        "/v1/conversations", params={"limit": 2, "cursor": page["next_cursor"]}, headers=headers
    )
    assert [c["id"] for c in rest.json()["data"]["conversations"]] == [ids[1]]
    assert rest.json()["data"]["next_cursor"] is None

    assert (
        await app_client.delete(f"/v1/conversations/{ids[1]}", headers=headers)
    ).status_code == 204
    assert (await app_client.get(f"/v1/conversations/{ids[1]}", headers=headers)).status_code == 404
    assert (
        await app_client.delete(f"/v1/conversations/{ids[1]}", headers=headers)
    ).status_code == 404


async def test_other_users_conversations_are_not_found(app_client: httpx.AsyncClient) -> None:
    alice = await auth(app_client, "alice@example.com")
    bob = await auth(app_client, "bob@example.com")
    r = await app_client.post("/v1/conversations", json={"message": "secret"}, headers=alice)
    conversation_id = r.json()["data"]["conversation"]["id"]
    for method, path, body in [
        ("GET", f"/v1/conversations/{conversation_id}", None),
        ("POST", f"/v1/conversations/{conversation_id}/messages", {"message": "hi"}),
        ("POST", f"/v1/conversations/{conversation_id}/approve", {"approved": True}),
        ("DELETE", f"/v1/conversations/{conversation_id}", None),
    ]:
        response = await app_client.request(method, path, json=body, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"
    listed = (await app_client.get("/v1/conversations", headers=bob)).json()["data"]
    assert listed["conversations"] == []


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/conversations", {"message": ""}, 422, "VALIDATION_ERROR"),
        ("/v1/conversations", {}, 422, "VALIDATION_ERROR"),
        ("/v1/conversations", {"message": "hi", "agent_type": "wizard"}, 422, "VALIDATION_ERROR"),
        ("/v1/conversations", {"message": "hi", "model": "gpt-9"}, 404, "MODEL_NOT_FOUND"),
        ("/v1/conversations", {"message": "x" * 100_001}, 422, "VALIDATION_ERROR"),
        ("/v1/conversations", {"message": "hi", "title": "t" * 501}, 422, "VALIDATION_ERROR"),
        (f"/v1/conversations/{uuid.uuid4()}/messages", {"message": "hi"}, 404, "NOT_FOUND"),
        ("/v1/conversations/not-a-uuid/messages", {"message": "hi"}, 422, "VALIDATION_ERROR"),
        (f"/v1/conversations/{uuid.uuid4()}/approve", {}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    app_client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    headers = await auth(app_client)
    response = await app_client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_list_rejects_a_forged_cursor_and_bad_limits(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    bad_cursor = await app_client.get("/v1/conversations?cursor=bm9wZQ", headers=headers)
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["error"]["code"] == "INVALID_REQUEST"
    for query in ("limit=0", "limit=101", "status=sleeping"):
        assert (
            await app_client.get(f"/v1/conversations?{query}", headers=headers)
        ).status_code == 422


async def test_streamed_turn_sends_typed_events_then_done(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    response = await app_client.post(
        "/v1/conversations", json={"message": "What is 6 * 7?", "stream": True}, headers=headers
    )
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "id: 1\n" in response.text
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    types = [e["type"] for e in events[:-1]]
    assert types[0] == "tool_call"
    assert "tool_result" in types
    assert "content" in types
    assert types[-1] == "done"
    result = next(e for e in events[:-1] if e["type"] == "tool_result")
    assert result["result"]["result"] == 42
    text = "".join(e["delta"] for e in events[:-1] if e["type"] == "content")
    assert "42" in text
    assert events[-2]["conversation"]["status"] == "active"


async def test_approval_pauses_blocks_and_resumes_once_with_edited_arguments(
    approval_client: httpx.AsyncClient, app_db: AsyncEngine
) -> None:
    client = approval_client
    headers = await auth(client)
    created = await client.post(
        "/v1/conversations", json={"message": "What is 2 + 2?"}, headers=headers
    )
    turn = created.json()["data"]
    assert turn["status"] == "pending_approval"
    (call,) = turn["pending_approval"]["tool_calls"]
    assert (call["name"], call["arguments"]) == ("calculator", {"expression": "2 + 2"})
    assert call["reason"]
    conversation_id = turn["conversation"]["id"]

    metrics = (await client.get("/metrics")).text
    assert "agent_api_approvals_pending 1.0" in metrics

    busy = await client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"message": "hi"}, headers=headers
    )
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "CONVERSATION_BUSY"
    detail = (await client.get(f"/v1/conversations/{conversation_id}", headers=headers)).json()[
        "data"
    ]
    assert detail["pending_approval"]["tool_calls"][0]["id"] == call["id"]

    approved = await client.post(
        f"/v1/conversations/{conversation_id}/approve",
        json={"approved": True, "arguments": {call["id"]: {"expression": "3 + 3"}}},
        headers=headers,
    )
    assert approved.status_code == 200, approved.text
    resumed = approved.json()["data"]
    assert resumed["status"] == "active"
    tool_message = next(m for m in resumed["messages"] if m["role"] == "tool")
    assert json.loads(tool_message["content"])["result"] == 6
    assert "6" in resumed["messages"][-1]["content"]

    assert "agent_api_approvals_pending 0.0" in (await client.get("/metrics")).text
    again = await client.post(
        f"/v1/conversations/{conversation_id}/approve", json={"approved": True}, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "NOT_PENDING_APPROVAL"

    async with app_db.connect() as conn:
        row = (await conn.execute(select(tool_executions))).one()
    assert (row.status, row.decision, row.original_arguments, row.edited_arguments) == (
        "succeeded",
        "approved",
        {"expression": "2 + 2"},
        {"expression": "3 + 3"},
    )


async def test_rejection_reaches_the_model_which_answers(
    approval_client: httpx.AsyncClient,
) -> None:
    client = approval_client
    headers = await auth(client)
    turn = (
        await client.post("/v1/conversations", json={"message": "What is 2 + 2?"}, headers=headers)
    ).json()["data"]
    conversation_id = turn["conversation"]["id"]
    rejected = await client.post(
        f"/v1/conversations/{conversation_id}/approve",
        json={"approved": False, "reason": "not today"},
        headers=headers,
    )
    assert rejected.status_code == 200
    messages = rejected.json()["data"]["messages"]
    assert [m["role"] for m in messages] == ["tool", "assistant"]
    assert "rejected by the user: not today" in messages[0]["content"]
    assert messages[1]["content"]
    assert rejected.json()["data"]["status"] == "active"


async def test_a_run_whose_lease_expired_is_swept_to_failed(tmp_path: Path) -> None:
    """A process that died mid-run leaves `running` behind; the periodic sweep fails it."""
    settings = make_settings(tmp_path, agent_run_lease="1s")
    async with running_app(settings) as client:
        headers = await auth(client)
        turn = await client.post("/v1/conversations", json={"message": "hi"}, headers=headers)
        conversation_id = turn.json()["data"]["conversation"]["id"]
        engine = create_async_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == uuid.UUID(conversation_id))
                .values(
                    status="running",
                    run_id=uuid.uuid4(),
                    lease_expires_at=datetime.now(UTC) - timedelta(seconds=5),
                )
            )
        await engine.dispose()

        async def status() -> str:
            r = await client.get(f"/v1/conversations/{conversation_id}", headers=headers)
            return str(r.json()["data"]["conversation"]["status"])

        async def failed() -> bool:
            return await status() == "failed"

        assert await status() == "running"
        await wait_until(failed, timeout=3)
        again = await client.post(
            f"/v1/conversations/{conversation_id}/messages", json={"message": "hi"}, headers=headers
        )
        assert again.status_code == 200
