"""web_search through the whole app, with the real Brave adapter talking to a local server
playing Brave: offered only with WEB_SEARCH_API_KEY, results in the original's shape, and
upstream trouble answered as TOOL_FAILED / TOOL_TIMEOUT without the upstream's words."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.integration.test_brave import KEY, LEAK, BraveStub
from tests.unit.fakes import FakeHasher


@pytest.fixture
def brave() -> Iterator[BraveStub]:
    stub = BraveStub()
    yield stub
    stub.close()


@pytest.fixture
async def client(brave: BraveStub, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path,
        rate_limit_enabled=False,
        web_search_api_key=KEY,
        web_search_base_url=brave.url,
        tool_timeout="0.5s",
    )
    async with running_app(settings, hasher=FakeHasher()) as c:
        c.headers.update(bearer((await register_and_login(c))["access_token"]))
        yield c


async def search(client: httpx.AsyncClient, arguments: Any) -> httpx.Response:
    body = {"id": "call_s", "function": {"name": "web_search", "arguments": arguments}}
    return await client.post("/v1/tools/execute", json=body)


async def test_offered_and_runs_with_a_key(client: httpx.AsyncClient, brave: BraveStub) -> None:
    tools = (await client.get("/v1/tools")).json()["data"]["tools"]
    assert [t["function"]["name"] for t in tools] == ["calculator", "web_search"]
    response = await search(client, {"query": "agent api", "num_results": 2})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["result"] == {
        "results": [
            {
                "title": "The Agent API & friends",
                "url": "https://example.com/agent",
                "description": "All about agents.",
            },
            {"title": "Second", "url": "http://example.org/2", "description": ""},
        ],
        "count": 2,
    }
    assert brave.requests[0]["query"] == {"q": ["agent api"], "count": ["2"]}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [({}, "query"), ({"query": "q", "num_results": 11}, "num_results"), ({"query": " "}, "query")],
)
async def test_bad_arguments_never_reach_the_upstream(
    client: httpx.AsyncClient, brave: BraveStub, arguments: dict[str, Any], field: str
) -> None:
    response = await search(client, arguments)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == field
    assert brave.requests == []


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("401", 422, "TOOL_FAILED"),
        ("429", 422, "TOOL_FAILED"),
        ("500", 422, "TOOL_FAILED"),
        ("malformed", 422, "TOOL_FAILED"),
        ("slow", 504, "TOOL_TIMEOUT"),
    ],
)
async def test_upstream_trouble(
    client: httpx.AsyncClient, brave: BraveStub, mode: str, status: int, code: str
) -> None:
    brave.mode = mode
    response = await search(client, {"query": "q"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert LEAK not in response.text
    assert KEY not in response.text


async def test_not_offered_without_a_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_enabled=False)
    async with running_app(settings, hasher=FakeHasher()) as c:
        c.headers.update(bearer((await register_and_login(c))["access_token"]))
        tools = (await c.get("/v1/tools")).json()["data"]["tools"]
        assert [t["function"]["name"] for t in tools] == ["calculator"]
        response = await search(c, {"query": "q"})
        assert response.status_code == 404
