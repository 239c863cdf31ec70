"""GET /v1/usage: the caller's token usage (recorded through the repository the agent uses),
totals and groups, owner-scoped, and every validation path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from asgi_lifespan import LifespanManager

from agent_api.api.app import create_app
from agent_api.bootstrap import Container
from tests.conftest import bearer, make_settings, register_and_login
from tests.unit.fakes import FakeHasher

NOW = datetime.now(UTC)


@dataclass
class Api:
    client: httpx.AsyncClient
    container: Container


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    app = create_app(make_settings(tmp_path), hasher=FakeHasher())
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app.state.container)


async def login(api: Api, email: str) -> tuple[str, UUID]:
    data = await register_and_login(api.client, email=email)
    return data["access_token"], UUID(data["user"]["id"])


async def usage(api: Api, token: str, **params: Any) -> httpx.Response:
    return await api.client.get("/v1/usage", params=params, headers=bearer(token))


async def test_a_session_sees_all_its_users_usage_and_nothing_else(api: Api) -> None:
    token, ada = await login(api, "ada@example.com")
    _, bob = await login(api, "bob@example.com")
    record = api.container.usage_records.record
    await record(ada, None, None, "gpt-4o-mini", 10, 5, at=NOW - timedelta(days=1))
    await record(ada, None, None, "gpt-4o", 100, 50, at=NOW - timedelta(hours=1))
    await record(ada, None, None, "gpt-4o", 1, 1, at=NOW - timedelta(days=40))  # too old
    await record(bob, None, None, "gpt-4o", 9999, 9999, at=NOW - timedelta(hours=1))

    response = await usage(api, token, group_by="model")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["group_by"] == "model"
    assert data["totals"] == {
        "requests": 2,
        "prompt_tokens": 110,
        "completion_tokens": 55,
        "total_tokens": 165,
    }
    assert data["groups"] == [
        {
            "key": "gpt-4o",
            "requests": 1,
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "total_tokens": 150,
        },
        {
            "key": "gpt-4o-mini",
            "requests": 1,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
        },
    ]
    start, end = datetime.fromisoformat(data["from"]), datetime.fromisoformat(data["to"])
    assert end - start == timedelta(days=30)


async def test_groups_by_day_by_default_and_by_api_key(api: Api) -> None:
    token, ada = await login(api, "ada@example.com")
    created = await api.client.post("/v1/api-keys", json={"name": "bot"}, headers=bearer(token))
    key_id = created.json()["data"]["api_key"]["id"]
    record = api.container.usage_records.record
    await record(ada, None, None, "m", 1, 1, at=datetime(2026, 1, 1, 10, tzinfo=UTC))
    await record(ada, UUID(key_id), None, "m", 2, 2, at=datetime(2026, 1, 2, 10, tzinfo=UTC))
    period = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"}

    by_day = (await usage(api, token, **period)).json()["data"]
    assert by_day["group_by"] == "day"
    assert [(g["key"], g["total_tokens"]) for g in by_day["groups"]] == [
        ("2026-01-01", 2),
        ("2026-01-02", 4),
    ]
    by_key = (await usage(api, token, group_by="api_key", **period)).json()["data"]
    assert [(g["key"], g["total_tokens"]) for g in by_key["groups"]] == [(None, 2), (key_id, 4)]


async def test_an_api_key_sees_only_its_own_usage(api: Api) -> None:
    token, ada = await login(api, "ada@example.com")
    created = (
        await api.client.post("/v1/api-keys", json={"name": "bot"}, headers=bearer(token))
    ).json()["data"]
    key_id = UUID(created["api_key"]["id"])
    record = api.container.usage_records.record
    await record(ada, key_id, None, "m", 3, 4, at=NOW - timedelta(minutes=5))
    await record(ada, None, None, "m", 100, 100, at=NOW - timedelta(minutes=5))
    data = (await usage(api, created["key"])).json()["data"]
    assert data["totals"]["total_tokens"] == 7
    assert data["totals"]["requests"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "week"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        # Times at the edge of the date range once in UTC or minus the default period.
        ({"to": "0001-01-02T00:00:00Z"}, "to"),
        ({"to": "9999-12-31T23:00:00-05:00"}, "to"),
        ({"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-05T00:00:00Z"}, "from"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    api: Api, params: dict[str, str], field: str
) -> None:
    token, _ = await login(api, "ada@example.com")
    response = await usage(api, token, **params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in error["details"]]


async def test_usage_needs_a_credential(api: Api) -> None:
    assert (await api.client.get("/v1/usage")).status_code == 401
