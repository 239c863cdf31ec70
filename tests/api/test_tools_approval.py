"""Tools that need a human decision never run through the direct tool endpoints: they answer
403 APPROVAL_REQUIRED (a batch item: that item), and the refusal is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.schema import tool_executions
from agent_api.tools.base import ToolContext
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.unit.fakes import FakeHasher


class Wire:
    """Declares `requires_approval` itself, and counts its runs."""

    name = "wire"
    description = "Sends money."
    parameters: dict[str, Any] = {"type": "object"}
    requires_approval = True

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        self.runs += 1
        return "sent"


class Shell(Wire):
    """Needs approval only because TOOLS_REQUIRING_APPROVAL names it."""

    name = "shell"
    requires_approval = False


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Wire, Shell, str]]:
    wire, shell = Wire(), Shell()
    settings = make_settings(tmp_path, rate_limit_enabled=False, tools_requiring_approval="shell")
    async with running_app(settings, extra_tools=[wire, shell], hasher=FakeHasher()) as client:
        login = await register_and_login(client)
        client.headers.update(bearer(login["access_token"]))
        yield client, wire, shell, settings.database_url


async def rows(url: str) -> list[Any]:
    db = Database(create_engine(url))
    try:
        async with db.connect() as conn:
            query = select(tool_executions).order_by(tool_executions.c.created_at)
            return list((await conn.execute(query)).all())
    finally:
        await db.dispose()


def tool_call(name: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


async def test_the_listing_flags_both_kinds(
    setup: tuple[httpx.AsyncClient, Wire, Shell, str],
) -> None:
    tools = (await setup[0].get("/v1/tools")).json()["data"]["tools"]
    flags = {t["function"]["name"]: t["requires_approval"] for t in tools}
    # shell by TOOLS_REQUIRING_APPROVAL, wire by its own flag
    assert flags == {"calculator": False, "shell": True, "wire": True}


@pytest.mark.parametrize("name", ["wire", "shell"])
async def test_execute_refuses_a_tool_that_needs_approval(
    setup: tuple[httpx.AsyncClient, Wire, Shell, str], name: str
) -> None:
    client, wire, shell, url = setup
    response = await client.post("/v1/tools/execute", json=tool_call(name))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "APPROVAL_REQUIRED"
    assert name in response.json()["error"]["message"]
    assert wire.runs == shell.runs == 0
    [row] = await rows(url)
    assert (row.tool_name, row.status, row.error_code) == (name, "failed", "APPROVAL_REQUIRED")


async def test_batch_refuses_only_the_items_that_need_approval(
    setup: tuple[httpx.AsyncClient, Wire, Shell, str],
) -> None:
    client, wire, shell, url = setup
    calculator = {
        "id": "c",
        "function": {"name": "calculator", "arguments": {"expression": "2+3"}},
    }
    response = await client.post(
        "/v1/tools/batch", json=[tool_call("wire", "w"), calculator, tool_call("shell", "s")]
    )
    assert response.status_code == 200, response.text
    results = response.json()["data"]["results"]
    assert [r["ok"] for r in results] == [False, True, False]
    assert results[0]["error"]["code"] == results[2]["error"]["code"] == "APPROVAL_REQUIRED"
    assert results[1]["result"]["result"] == 5
    assert wire.runs == shell.runs == 0
    statuses = sorted((r.tool_call_id, r.status, r.error_code) for r in await rows(url))
    assert statuses == [
        ("c", "succeeded", None),
        ("s", "failed", "APPROVAL_REQUIRED"),
        ("w", "failed", "APPROVAL_REQUIRED"),
    ]


async def test_openapi_documents_the_refusal(
    setup: tuple[httpx.AsyncClient, Wire, Shell, str],
) -> None:
    client = setup[0]
    spec = (await client.get("/openapi.json")).json()
    execute = spec["paths"]["/v1/tools/execute"]["post"]
    assert "APPROVAL_REQUIRED" in execute["description"]
    forbidden = execute["responses"]["403"]["content"]["application/json"]
    assert forbidden["examples"]["approval required"]["value"]["error"]["code"] == (
        "APPROVAL_REQUIRED"
    )
    assert "APPROVAL_REQUIRED" in spec["paths"]["/v1/tools/batch"]["post"]["description"]
