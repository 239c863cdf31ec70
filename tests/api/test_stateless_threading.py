"""Stateless clients on `/v1/chat/completions`: a client that resends its transcript (as the
SDKs do, without a conversation id) continues one conversation; retries never run twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from agent_api.domain.chat import ChatRequest, ChatResult
from agent_api.domain.errors import UpstreamTimeout
from tests.api.test_run_caps import GatedChatModel, keys_for
from tests.conftest import bearer, make_settings, running_app
from tests.unit.agent_fakes import ScriptedChatModel, text
from tests.unit.fakes import FakeHasher


def user(content: str) -> dict[str, Any]:
    return {"role": "user", "content": content}


def echoed(body: dict[str, Any]) -> dict[str, Any]:
    """The answer as an SDK appends it to its history (`message.model_dump()`, nulls kept)."""
    return body["choices"][0]["message"]


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], messages: list[dict[str, Any]]
) -> httpx.Response:
    body = {"model": "demo", "messages": messages}
    return await client.post("/v1/chat/completions", json=body, headers=headers)


async def messages_of(client: httpx.AsyncClient, headers: dict[str, str], cid: str) -> list[str]:
    response = await client.get(f"/v1/conversations/{cid}", headers=headers)
    assert response.status_code == 200, response.text
    return [m["role"] for m in response.json()["data"]["messages"]]


async def conversation_count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    listed = await client.get("/v1/conversations", headers=headers)
    return len(listed.json()["data"]["conversations"])


async def test_three_stateless_turns_leave_one_conversation_of_six_messages(
    tmp_path: Path,
) -> None:
    model = ScriptedChatModel(text("one"), text("two"), text("three"))
    async with running_app(make_settings(tmp_path), hasher=FakeHasher(), chat_model=model) as c:
        headers = bearer((await keys_for(c, "ada@example.com"))[0])
        history = [user("q1")]
        ids = set()
        for question in ("q2", "q3", None):
            response = await post(c, headers, history)
            assert response.status_code == 200, response.text
            ids.add(response.json()["conversation_id"])
            history = [*history, echoed(response.json())]
            if question:
                history.append(user(question))
        (cid,) = ids
        roles = await messages_of(c, headers, cid)
        assert roles == ["user", "assistant"] * 3
        assert await conversation_count(c, headers) == 1


async def test_a_branch_or_another_users_transcript_starts_a_new_conversation(
    tmp_path: Path,
) -> None:
    model = ScriptedChatModel(text("one"))
    async with running_app(make_settings(tmp_path), hasher=FakeHasher(), chat_model=model) as c:
        ada = bearer((await keys_for(c, "ada@example.com"))[0])
        bob = bearer((await keys_for(c, "bob@example.com"))[0])
        first = (await post(c, ada, [user("q1")])).json()
        continued = [user("q1"), echoed(first), user("q2")]
        theirs = (await post(c, bob, continued)).json()
        assert theirs["conversation_id"] != first["conversation_id"]
        assert await messages_of(c, bob, theirs["conversation_id"]) == ["user", "assistant"] * 2
        edited = (await post(c, ada, [user("q1, edited"), echoed(first), user("q2")])).json()
        assert edited["conversation_id"] != first["conversation_id"]
        assert await messages_of(c, ada, first["conversation_id"]) == ["user", "assistant"]
        assert await conversation_count(c, ada) == 2


async def test_a_retry_while_the_first_attempt_runs_is_refused_not_rerun(tmp_path: Path) -> None:
    model = GatedChatModel()
    async with running_app(make_settings(tmp_path), hasher=FakeHasher(), chat_model=model) as c:
        headers = bearer((await keys_for(c, "ada@example.com"))[0])
        first = asyncio.create_task(post(c, headers, [user("q")]))
        await model.held(1)
        retry = await post(c, headers, [user("q")])
        model.gate.set()
        answered = await first
    assert answered.status_code == 200
    assert retry.status_code == 409
    assert retry.headers["x-should-retry"] == "false"
    assert retry.json()["error"]["code"] == "duplicate_request"
    assert len(model.requests) == 1


class TimingOutModel(ScriptedChatModel):
    async def complete(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        raise UpstreamTimeout()


async def test_an_upstream_timeout_tells_sdks_not_to_retry(tmp_path: Path) -> None:
    model = TimingOutModel(text("never"))
    async with running_app(make_settings(tmp_path), hasher=FakeHasher(), chat_model=model) as c:
        headers = bearer((await keys_for(c, "ada@example.com"))[0])
        response = await post(c, headers, [user("q")])
        native = await c.post("/v1/conversations", json={"message": "q"}, headers=headers)
    assert response.status_code == 504
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["type"] == "server_error"
    assert native.status_code == 504
    assert "x-should-retry" not in native.headers
