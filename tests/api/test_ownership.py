"""Another user's objects do not exist for you, on every surface: deciding their pending
approval, continuing their conversation through /v1/chat/completions. Nothing of theirs changes
and nothing of theirs is shown."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import auth
from tests.api.test_approval_rights import approve, paused, still_pending


async def test_only_the_owner_decides_a_pending_approval(
    approval_client: httpx.AsyncClient, app_db: AsyncEngine
) -> None:
    client = approval_client
    owner = await auth(client, "owner@example.com")
    stranger = await auth(client, "stranger@example.com")
    conversation_id = await paused(client, owner)

    refused = await approve(client, conversation_id, stranger)

    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["code"] == "NOT_FOUND"
    assert await still_pending(client, conversation_id, owner)
    async with app_db.connect() as conn:
        decisions = (
            await conn.execute(text("SELECT decision, decided_by FROM tool_executions"))
        ).all()
    assert decisions == [(None, None)]

    decided = await approve(client, conversation_id, owner)
    assert decided.status_code == 200, decided.text
    async with app_db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT decision, decided_by, decided_at, status FROM tool_executions")
            )
        ).one()
    assert row.decision == "approved"
    assert row.decided_at is not None
    assert row.status == "succeeded"
    owner_id = (await client.get("/v1/auth/me", headers=owner)).json()["data"]["user"]["id"]
    assert str(row.decided_by).replace("-", "") == owner_id.replace("-", "")


async def test_chat_completions_cannot_continue_another_users_conversation(
    app_client: httpx.AsyncClient,
) -> None:
    client = app_client
    owner = await auth(client, "owner@example.com")
    stranger = await auth(client, "stranger@example.com")
    first = await client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "a secret: 42"}]},
        headers=owner,
    )
    assert first.status_code == 200, first.text
    conversation_id = first.json()["conversation_id"]

    question = {"model": "demo", "messages": [{"role": "user", "content": "what was it?"}]}
    by_body = await client.post(
        "/v1/chat/completions",
        json={**question, "conversation_id": conversation_id},
        headers=stranger,
    )
    by_header = await client.post(
        "/v1/chat/completions",
        json=question,
        headers={**stranger, "X-Conversation-Id": conversation_id},
    )
    for answer in (by_body, by_header):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["type"] == "invalid_request_error"

    detail = await client.get(f"/v1/conversations/{conversation_id}", headers=owner)
    assert detail.json()["data"]["conversation"]["message_count"] == 2
