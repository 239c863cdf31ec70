"""The tool endpoints on real PostgreSQL, which refuses NUL characters in text and JSONB: a call
whose id or arguments cannot be recorded is refused with a 4xx before its tool runs (batch:
that item alone), and a tool result holding NUL is recorded (made storable) instead of
failing after the tool ran."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.schema import tool_executions
from agent_api.tools.base import ToolContext
from tests.conftest import (
    bearer,
    fresh_database,
    make_settings,
    migrate,
    register_and_login,
    running_app,
)
from tests.unit.fakes import FakeHasher


class Nul:
    """Returns text with a NUL in it, and counts its runs."""

    name = "nul"
    description = "Answers with a NUL character."
    parameters: dict[str, Any] = {"type": "object", "properties": {"text": {"type": "string"}}}
    requires_approval = False

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        self.runs += 1
        return {"text": "a\u0000b", "k\u0000": 1}


@dataclass
class App:
    client: httpx.AsyncClient
    url: str
    tool: Nul

    async def rows(self) -> list[Any]:
        db = Database(create_engine(self.url))
        try:
            async with db.connect() as conn:
                query = select(tool_executions).order_by(tool_executions.c.created_at)
                return list((await conn.execute(query)).all())
        finally:
            await db.dispose()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with fresh_database("tools") as url:
        await migrate(url)
        tool = Nul()
        settings = make_settings(tmp_path, database_url=url, rate_limit_enabled=False)
        async with running_app(settings, extra_tools=[tool], hasher=FakeHasher()) as client:
            login = await register_and_login(client)
            client.headers.update(bearer(login["access_token"]))
            yield App(client, url, tool)


def nul_call(call_id: str = "call_1", arguments: Any = '{"text": "x"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "nul", "arguments": arguments}}


async def test_a_nul_in_the_arguments_is_a_400_naming_the_field(app: App) -> None:
    response = await app.client.post(
        "/v1/tools/execute", json=nul_call(arguments='{"text": "a\\u0000"}')
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_ARGUMENTS"
    assert response.json()["error"]["details"][0]["field"] == "text"
    assert app.tool.runs == 0
    [row] = await app.rows()
    assert (row.status, row.error_code) == ("failed", "INVALID_ARGUMENTS")
    assert row.arguments == {"text": "a\ufffd"}


async def test_a_nul_in_the_call_id_is_a_400(app: App) -> None:
    response = await app.client.post("/v1/tools/execute", json=nul_call("call\u00001"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert app.tool.runs == 0
    [row] = await app.rows()
    assert (row.tool_call_id, row.status) == ("call\ufffd1", "failed")


async def test_a_too_long_call_id_is_refused_before_anything_runs(app: App) -> None:
    response = await app.client.post("/v1/tools/execute", json=nul_call("x" * 101))
    assert response.status_code == 422, response.text
    assert "id" in response.json()["error"]["details"][0]["field"]
    batch = await app.client.post("/v1/tools/batch", json=[nul_call("ok"), nul_call("x" * 101)])
    assert batch.status_code == 422, batch.text
    assert app.tool.runs == 0
    assert await app.rows() == []


async def test_a_batch_isolates_the_items_that_cannot_be_recorded(app: App) -> None:
    batch = await app.client.post(
        "/v1/tools/batch",
        json=[
            nul_call("a"),
            nul_call("b\u0000"),
            nul_call("c", {"te\u0000xt": "x"}),
            {"id": "d", "function": {"name": "n\u0000l", "arguments": "{}"}},
            nul_call("e"),
        ],
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["data"]["results"]
    assert [r["ok"] for r in results] == [True, False, False, False, True]
    codes = [r["error"]["code"] for r in results if not r["ok"]]
    assert codes == ["INVALID_REQUEST", "INVALID_ARGUMENTS", "TOOL_NOT_FOUND"]
    assert app.tool.runs == 2
    rows = {row.tool_call_id: row for row in await app.rows()}
    assert sorted(rows) == ["a", "b\ufffd", "c", "d", "e"]
    assert [rows[k].status for k in sorted(rows)] == [
        "succeeded",
        "failed",
        "failed",
        "failed",
        "succeeded",
    ]
    assert rows["d"].tool_name == "n\ufffdl"


async def test_a_result_holding_nul_is_recorded_storably(app: App) -> None:
    response = await app.client.post("/v1/tools/execute", json=nul_call())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["result"] == {"text": "a\u0000b", "k\u0000": 1}
    [row] = await app.rows()
    assert row.status == "succeeded"
    assert row.result == {"text": "a\ufffdb", "k\ufffd": 1}
