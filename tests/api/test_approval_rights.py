"""Who may decide an approval: a session (a person), or an API key created with
`can_approve`; and only for tools the credential may use. A refused decision leaves the
calls pending."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import auth
from tests.conftest import bearer


async def new_key(
    client: httpx.AsyncClient, session: dict[str, str], **fields: Any
) -> dict[str, str]:
    created = await client.post("/v1/api-keys", json={"name": "bot", **fields}, headers=session)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["api_key"]["can_approve"] is fields.get("can_approve", False)
    return bearer(created.json()["data"]["key"])


async def paused(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(
        "/v1/conversations", json={"message": "What is 2 + 2?"}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["status"] == "pending_approval"
    conversation_id: str = created.json()["data"]["conversation"]["id"]
    return conversation_id


async def approve(
    client: httpx.AsyncClient, conversation_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/v1/conversations/{conversation_id}/approve", json={"approved": True}, headers=headers
    )


async def still_pending(
    client: httpx.AsyncClient, conversation_id: str, headers: dict[str, str]
) -> bool:
    detail = (await client.get(f"/v1/conversations/{conversation_id}", headers=headers)).json()
    data = detail["data"]
    return bool(
        data["conversation"]["status"] == "pending_approval"
        and data["pending_approval"]
        and data["pending_approval"]["tool_calls"][0]["name"] == "calculator"
    )


async def test_a_key_without_can_approve_cannot_approve_its_own_paused_call(
    approval_client: httpx.AsyncClient,
) -> None:
    client = approval_client
    session = await auth(client)
    key = await new_key(client, session)
    conversation_id = await paused(client, key)
    refused = await approve(client, conversation_id, key)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "APPROVAL_FORBIDDEN"
    assert await still_pending(client, conversation_id, key)
    # The person can still decide it.
    decided = await approve(client, conversation_id, session)
    assert decided.status_code == 200, decided.text
    assert decided.json()["data"]["status"] == "active"


async def test_a_key_created_with_can_approve_may_decide(
    approval_client: httpx.AsyncClient,
) -> None:
    client = approval_client
    session = await auth(client)
    key = await new_key(client, session, can_approve=True)
    conversation_id = await paused(client, key)
    decided = await approve(client, conversation_id, key)
    assert decided.status_code == 200, decided.text
    assert decided.json()["data"]["status"] == "active"


async def test_a_key_that_may_not_use_the_tool_cannot_decide_its_call(
    approval_client: httpx.AsyncClient,
) -> None:
    client = approval_client
    session = await auth(client)
    conversation_id = await paused(client, session)
    key = await new_key(client, session, can_approve=True, allowed_tools=[])
    refused = await approve(client, conversation_id, key)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "TOOL_FORBIDDEN"
    assert await still_pending(client, conversation_id, session)
    decided = await approve(client, conversation_id, session)
    assert decided.status_code == 200, decided.text


async def test_the_permission_is_shown_in_the_listing_and_in_me(
    approval_client: httpx.AsyncClient,
) -> None:
    client = approval_client
    session = await auth(client)
    approver = await new_key(client, session, can_approve=True)
    plain = await new_key(client, session)
    listed = (await client.get("/v1/api-keys", headers=session)).json()["data"]["api_keys"]
    assert sorted(k["can_approve"] for k in listed) == [False, True]
    me = {}
    for name, headers in [("session", session), ("approver", approver), ("plain", plain)]:
        me[name] = (await client.get("/v1/auth/me", headers=headers)).json()["data"]
    assert [me[n]["credential"]["can_approve"] for n in ("session", "approver", "plain")] == [
        True,
        True,
        False,
    ]


async def test_can_approve_must_be_a_boolean(approval_client: httpx.AsyncClient) -> None:
    session = await auth(approval_client)
    response = await approval_client.post(
        "/v1/api-keys", json={"name": "bot", "can_approve": "maybe"}, headers=session
    )
    assert response.status_code == 422
    assert "can_approve" in response.text
