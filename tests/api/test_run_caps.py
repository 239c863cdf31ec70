"""The cap on concurrent agent runs (MAX_CONCURRENT_RUNS_PER_KEY / _PER_USER): the run over
the cap gets 429 with Retry-After (OpenAI's error shape on /v1/chat/completions) and writes
nothing; slots free up when runs end, streamed or not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_api.domain.chat import ChatEvent, ChatRequest, ChatResult
from agent_api.infrastructure.metrics import Metrics
from tests.api.conftest import sse_events
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.unit.agent_fakes import ScriptedChatModel, text
from tests.unit.fakes import FakeHasher


class GatedChatModel(ScriptedChatModel):
    """Every call waits at the gate until the test opens it; `waiting` counts those held."""

    def __init__(self) -> None:
        super().__init__(text("all done"))
        self.gate = asyncio.Event()
        self.waiting = 0

    async def _wait(self) -> None:
        self.waiting += 1
        await self.gate.wait()

    async def complete(self, request: ChatRequest) -> ChatResult:
        await self._wait()
        return await super().complete(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        await self._wait()
        async for event in super().stream(request):
            yield event

    async def held(self, count: int) -> None:
        async with asyncio.timeout(30):
            while self.waiting < count:
                await asyncio.sleep(0.01)


def chat(stream: bool) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def numbered(body: dict[str, Any], n: int) -> dict[str, Any]:
    """`body` with its own text: the same body again would be a retry of the same request,
    refused as a duplicate before the cap is consulted."""
    if "messages" in body:
        return {**body, "messages": [{"role": "user", "content": f"hi {n}"}]}
    return {**body, "message": f"hi {n}"}


ROUTES = {
    "chat-stream": ("/v1/chat/completions", chat(stream=True)),
    "chat": ("/v1/chat/completions", chat(stream=False)),
    "native-stream": ("/v1/conversations", {"message": "hi", "stream": True}),
}


async def keys_for(client: httpx.AsyncClient, email: str, count: int = 1) -> list[str]:
    token = (await register_and_login(client, email))["access_token"]
    keys = []
    for _ in range(count):
        response = await client.post("/v1/api-keys", json={"name": "k"}, headers=bearer(token))
        assert response.status_code == 201, response.text
        keys.append(response.json()["data"]["key"])
    return keys


@pytest.mark.parametrize("route", list(ROUTES))
async def test_the_run_over_the_cap_is_refused_until_one_ends(tmp_path: Path, route: str) -> None:
    path, body = ROUTES[route]
    model, metrics = GatedChatModel(), Metrics()
    settings = make_settings(tmp_path, max_concurrent_runs_per_key=2)
    async with running_app(
        settings, hasher=FakeHasher(), chat_model=model, metrics=metrics
    ) as client:
        headers = bearer((await keys_for(client, "ada@example.com"))[0])
        running = [
            asyncio.create_task(client.post(path, json=numbered(body, n), headers=headers))
            for n in (1, 2)
        ]
        await model.held(2)
        async with asyncio.timeout(10):  # without a cap it would wait at the gate
            refused = await client.post(path, json=numbered(body, 3), headers=headers)
        listed = await client.get("/v1/conversations", headers=headers)
        model.gate.set()
        finished = await asyncio.gather(*running)
        after = await client.post(path, json=numbered(body, 4), headers=headers)
    ok = 201 if path == "/v1/conversations" else 200
    assert [r.status_code for r in finished] == [ok, ok]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    message = "too many runs in progress for this API key (at most 2 at once)"
    if path == "/v1/chat/completions":
        assert refused.json() == {
            "error": {
                "message": message,
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    else:
        assert refused.json()["error"] == {"code": "RATE_LIMITED", "message": message}
    # The refused run wrote nothing: only the two admitted conversations exist.
    assert len(listed.json()["data"]["conversations"]) == 2
    assert after.status_code in (200, 201), after.text
    if body["stream"]:
        assert sse_events(after.text)[-1] == "[DONE]"
    assert (
        metrics.registry.get_sample_value(
            "agent_api_rate_limit_rejections_total", {"scope": "runs"}
        )
        == 1
    )


async def test_the_user_cap_spans_keys_and_sessions(tmp_path: Path) -> None:
    model = GatedChatModel()
    settings = make_settings(
        tmp_path, max_concurrent_runs_per_key=2, max_concurrent_runs_per_user=3
    )
    path, body = ROUTES["chat"]
    async with running_app(settings, hasher=FakeHasher(), chat_model=model) as client:
        first, second = map(bearer, await keys_for(client, "ada@example.com", 2))
        other_user = bearer((await keys_for(client, "bob@example.com"))[0])
        running = [
            asyncio.create_task(client.post(path, json=numbered(body, n), headers=h))
            for n, h in enumerate((first, first, second))
        ]
        await model.held(3)
        async with asyncio.timeout(10):
            refused = await client.post(path, json=numbered(body, 3), headers=second)
        running.append(asyncio.create_task(client.post(path, json=body, headers=other_user)))
        await model.held(4)
        model.gate.set()
        finished = await asyncio.gather(*running)
    assert refused.status_code == 429
    assert "this user (at most 3 at once)" in refused.json()["error"]["message"]
    assert [r.status_code for r in finished] == [200] * 4


async def test_a_run_refused_before_it_starts_gives_its_slot_back(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_concurrent_runs_per_key=1)
    async with running_app(settings, hasher=FakeHasher()) as client:
        headers = bearer((await keys_for(client, "ada@example.com"))[0])
        missing = f"/v1/conversations/{uuid.uuid4()}"
        answers = [
            await client.post(f"{missing}/messages", json={"message": "hi"}, headers=headers),
            await client.post(f"{missing}/approve", json={"decisions": []}, headers=headers),
            await client.post(
                "/v1/chat/completions", json={**chat(False), "model": "nope"}, headers=headers
            ),
            await client.post("/v1/chat/completions", json=chat(False), headers=headers),
            await client.post("/v1/chat/completions", json=chat(True), headers=headers),
        ]
    assert all(a.status_code != 429 for a in answers), [a.text for a in answers]
    assert [a.status_code for a in answers[3:]] == [200, 200]
