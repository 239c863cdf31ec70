"""The tool endpoints through the whole app: every documented status, batch semantics, the
per-key ACL on every path, the audit rows, the timeout and the metric."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from agent_api.config import Settings
from agent_api.domain.api_keys import generate_key, hash_key
from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.schema import api_keys, tool_executions
from agent_api.tools.base import ToolContext
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.unit.fakes import FakeHasher

README_REQUEST = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "calculator", "arguments": '{"expression": "1337 * 42"}'},
}


class Echo:
    name = "echo"
    description = "Echoes its text."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }
    requires_approval = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return {"echo": args["text"], "user_id": str(ctx.user_id)}


class Slow:
    name = "slow"
    description = "Sleeps longer than any test's TOOL_TIMEOUT."
    parameters: dict[str, Any] = {"type": "object"}
    requires_approval = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> None:
        await asyncio.sleep(30)


class Probe:
    """Records how many of its calls run at the same time."""

    name = "probe"
    description = "Measures concurrency."
    parameters: dict[str, Any] = {"type": "object"}
    requires_approval = False

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.05)
        self.active -= 1
        return {"call": ctx.tool_call_id}


@dataclass
class App:
    client: httpx.AsyncClient
    settings: Settings
    user_id: str
    headers: dict[str, str]
    probe: Probe

    async def execute(self, name: str, arguments: Any, **kwargs: Any) -> httpx.Response:
        body = {
            "id": "call_x",
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        return await self.client.post("/v1/tools/execute", json=body, **kwargs)

    async def api_key(self, allowed_tools: list[str] | None) -> dict[str, str]:
        """A key for this user, inserted straight into the database."""
        raw = generate_key()
        db = Database(create_engine(self.settings.database_url))
        try:
            async with db.transaction() as conn:
                await conn.execute(
                    insert(api_keys).values(
                        id=uuid.uuid4(),
                        user_id=uuid.UUID(self.user_id),
                        name="restricted",
                        prefix=raw[:12],
                        key_hash=hash_key(raw),
                        allowed_tools=allowed_tools,
                        created_at=datetime.now(UTC),
                    )
                )
        finally:
            await db.dispose()
        return bearer(raw)

    async def audit_rows(self) -> list[Any]:
        db = Database(create_engine(self.settings.database_url))
        try:
            async with db.connect() as conn:
                query = select(tool_executions).order_by(tool_executions.c.created_at)
                return list((await conn.execute(query)).all())
        finally:
            await db.dispose()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    probe = Probe()
    settings = make_settings(
        tmp_path,
        rate_limit_enabled=False,
        tool_timeout="0.3s",
        tools_max_concurrent=3,
    )
    tools = [Echo(), Slow(), probe]
    async with running_app(settings, extra_tools=tools, hasher=FakeHasher()) as client:
        login = await register_and_login(client)
        headers = bearer(login["access_token"])
        client.headers.update(headers)
        yield App(client, settings, login["user"]["id"], headers, probe)


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    detail: dict[str, Any] = body["error"]
    return detail


async def test_readme_example_answers_an_integer(app: App) -> None:
    response = await app.client.post("/v1/tools/execute", json=README_REQUEST)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["tool_call_id"] == "call_1"
    assert data["name"] == "calculator"
    assert data["result"] == {"expression": "1337 * 42", "result": 56154}
    assert type(data["duration_ms"]) is int
    assert '"result":56154}' in response.text  # 56154, not 56154.0


async def test_list_is_sorted(app: App) -> None:
    response = await app.client.get("/v1/tools")
    assert response.status_code == 200
    tools = response.json()["data"]["tools"]
    assert [t["function"]["name"] for t in tools] == ["calculator", "echo", "probe", "slow"]
    # (the approval flag is tested in test_tools_approval.py)
    assert not any(t["requires_approval"] for t in tools)
    calculator = tools[0]
    assert calculator["type"] == "function"
    assert calculator["function"]["parameters"]["required"] == ["expression"]


async def test_arguments_may_be_an_object(app: App) -> None:
    response = await app.execute("calculator", {"expression": "2 ** 10"})
    assert response.status_code == 200
    assert response.json()["data"]["result"]["result"] == 1024


@pytest.mark.parametrize(
    ("name", "arguments", "status", "code", "message"),
    [
        ("weather", "{}", 404, "TOOL_NOT_FOUND", "no tool named 'weather'"),
        ("calculator", "{not json", 400, "INVALID_ARGUMENTS", "not valid JSON"),
        ("calculator", "[1]", 400, "INVALID_ARGUMENTS", "must be a JSON object"),
        ("calculator", "{}", 400, "INVALID_ARGUMENTS", "expression is required"),
        ("calculator", {"expression": 42}, 400, "INVALID_ARGUMENTS", "must be of type string"),
        ("calculator", {"expression": "1", "x": 1}, 400, "INVALID_ARGUMENTS", "x is not allowed"),
        ("calculator", {"expression": "1" * 100_000}, 400, "INVALID_ARGUMENTS", "at most 1000"),
        ("calculator", '{"expression": "1/0"}', 422, "TOOL_FAILED", "division by zero"),
        ("calculator", '{"expression": "9**9**9"}', 422, "TOOL_FAILED", "exponent"),
        ("calculator", '{"expression": "1e308*10"}', 422, "TOOL_FAILED", "not a finite number"),
        ("calculator", '{"expression": "__import__(\'os\')"}', 422, "TOOL_FAILED", "unknown"),
        ("slow", "{}", 504, "TOOL_TIMEOUT", "did not finish within 0.3 s"),
    ],
)
async def test_execute_errors(
    app: App, name: str, arguments: Any, status: int, code: str, message: str
) -> None:
    response = await app.execute(name, arguments)
    assert response.status_code == status, response.text
    body = error(response)
    assert body["code"] == code
    assert message in body["message"]


async def test_invalid_arguments_details_name_the_field(app: App) -> None:
    response = await app.execute("calculator", "{}")
    assert error(response)["details"] == [{"field": "expression", "message": "is required"}]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "call_1", "type": "function"},
        {"id": "call_1", "type": "function", "function": {"arguments": "{}"}},
        {"id": "call_1", "type": "retrieval", "function": {"name": "calculator"}},
        {"id": "", "function": {"name": "calculator"}},
        {"function": {"name": "x" * 101}},
    ],
)
async def test_malformed_tool_calls_are_422(app: App, body: dict[str, Any]) -> None:
    response = await app.client.post("/v1/tools/execute", json=body)
    assert response.status_code == 422
    assert error(response)["code"] == "VALIDATION_ERROR"


async def test_a_body_that_is_not_json_is_400(app: App) -> None:
    response = await app.client.post(
        "/v1/tools/execute", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_missing_credentials_are_401(app: App) -> None:
    for method, path in [
        ("GET", "/v1/tools"),
        ("POST", "/v1/tools/execute"),
        ("POST", "/v1/tools/batch"),
    ]:
        response = await app.client.request(
            method, path, json=README_REQUEST, headers={"Authorization": ""}
        )
        assert response.status_code == 401, path


async def test_a_missing_call_id_is_generated(app: App) -> None:
    body = {"function": {"name": "calculator", "arguments": '{"expression": "1"}'}}
    response = await app.client.post("/v1/tools/execute", json=body)
    assert response.status_code == 200
    assert response.json()["data"]["tool_call_id"].startswith("call_")


async def test_batch_keeps_order_and_reports_each_error(app: App) -> None:
    calls = [
        {
            "id": "a",
            "type": "function",
            "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'},
        },
        {
            "id": "b",
            "type": "function",
            "function": {"name": "calculator", "arguments": '{"expression": "1/0"}'},
        },
        {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{}"}},
        {"id": "d", "type": "function", "function": {"name": "calculator", "arguments": "nope"}},
        {"id": "e", "type": "function", "function": {"name": "slow", "arguments": "{}"}},
        {"id": "f", "type": "function", "function": {"name": "echo", "arguments": {"text": "hi"}}},
    ]
    response = await app.client.post("/v1/tools/batch", json=calls)
    assert response.status_code == 200, response.text
    results = response.json()["data"]["results"]
    assert [r["tool_call_id"] for r in results] == list("abcdef")
    assert None not in results
    assert results[0] == {
        "tool_call_id": "a",
        "name": "calculator",
        "ok": True,
        "result": {"expression": "2+2", "result": 4},
    }
    assert [r["ok"] for r in results] == [True, False, False, False, False, True]
    codes = [r["error"]["code"] for r in results if not r["ok"]]
    assert codes == ["TOOL_FAILED", "TOOL_NOT_FOUND", "INVALID_ARGUMENTS", "TOOL_TIMEOUT"]
    assert results[1]["error"]["message"] == "division by zero"
    assert all("result" not in r for r in results if not r["ok"])
    assert all("error" not in r for r in results if r["ok"])


async def test_batch_runs_in_parallel_under_tools_max_concurrent(app: App) -> None:
    calls = [{"id": f"p{i}", "function": {"name": "probe"}} for i in range(10)]
    response = await app.client.post("/v1/tools/batch", json=calls)
    results = response.json()["data"]["results"]
    assert [r["result"]["call"] for r in results] == [f"p{i}" for i in range(10)]
    assert app.probe.peak == 3  # TOOLS_MAX_CONCURRENT: parallel, and never more


async def test_batch_size_is_capped_at_32(app: App) -> None:
    call = {"function": {"name": "calculator", "arguments": '{"expression": "1"}'}}
    assert (await app.client.post("/v1/tools/batch", json=[call] * 32)).status_code == 200
    response = await app.client.post("/v1/tools/batch", json=[call] * 33)
    assert response.status_code == 422
    assert "at most 32 items" in error(response)["details"][0]["message"]
    empty = await app.client.post("/v1/tools/batch", json=[])
    assert empty.json()["data"] == {"results": []}


async def test_batch_body_must_be_an_array(app: App) -> None:
    response = await app.client.post("/v1/tools/batch", json=README_REQUEST)
    assert response.status_code in (400, 422)
    assert not response.json()["success"]


async def test_the_key_acl_applies_to_list_execute_and_batch(app: App) -> None:
    key = await app.api_key(["calculator"])
    listed = await app.client.get("/v1/tools", headers=key)
    assert [t["function"]["name"] for t in listed.json()["data"]["tools"]] == ["calculator"]

    forbidden = await app.execute("echo", {"text": "x"}, headers=key)
    assert forbidden.status_code == 403
    assert error(forbidden)["code"] == "TOOL_FORBIDDEN"
    allowed = await app.execute("calculator", {"expression": "1+1"}, headers=key)
    assert allowed.status_code == 200

    batch = await app.client.post(
        "/v1/tools/batch",
        json=[
            {"id": "1", "function": {"name": "echo", "arguments": {"text": "x"}}},
            {"id": "2", "function": {"name": "calculator", "arguments": {"expression": "3"}}},
        ],
        headers=key,
    )
    results = batch.json()["data"]["results"]
    assert results[0]["error"]["code"] == "TOOL_FORBIDDEN"
    assert results[1]["ok"] is True

    nothing = await app.api_key([])
    assert (await app.client.get("/v1/tools", headers=nothing)).json()["data"]["tools"] == []
    everything = await app.api_key(["*"])
    assert len((await app.client.get("/v1/tools", headers=everything)).json()["data"]["tools"]) == 4


async def test_every_call_leaves_one_audit_row(app: App) -> None:
    key = await app.api_key(["calculator"])
    await app.execute("calculator", '{"expression": "6*7"}')
    await app.execute("calculator", '{"expression": "1/0"}', headers=key)
    await app.execute("echo", '{"text": "no"}', headers=key)
    await app.execute("calculator", "{bad")
    await app.execute("slow", "{}")
    await app.client.post(
        "/v1/tools/batch",
        json=[{"id": "b1", "function": {"name": "calculator", "arguments": {"expression": "1"}}}],
    )
    rows = await app.audit_rows()
    summary = [(r.tool_name, r.status, r.error_code, r.api_key_id is not None) for r in rows]
    assert summary == [
        ("calculator", "succeeded", None, False),
        ("calculator", "failed", "TOOL_FAILED", True),
        ("echo", "failed", "TOOL_FORBIDDEN", True),
        ("calculator", "failed", "INVALID_ARGUMENTS", False),
        ("slow", "timed_out", "TOOL_TIMEOUT", False),
        ("calculator", "succeeded", None, False),
    ]
    first = rows[0]
    assert str(first.user_id) == app.user_id
    assert first.tool_call_id == "call_x"
    assert first.conversation_id is None
    assert first.arguments == {"expression": "6*7"}
    assert first.result == {"expression": "6*7", "result": 42}
    assert first.duration_ms is not None
    assert first.completed_at is not None
    assert rows[3].arguments == "{bad"
    assert rows[1].error_message == "division by zero"


async def test_executions_are_counted_by_tool_and_status(app: App) -> None:
    await app.execute("calculator", '{"expression": "1"}')
    await app.execute("calculator", '{"expression": "1/0"}')
    await app.execute("nope", "{}")
    metrics = (await app.client.get("/metrics")).text
    assert 'agent_api_tool_executions_total{status="succeeded",tool="calculator"} 1.0' in metrics
    assert 'agent_api_tool_executions_total{status="failed",tool="calculator"} 1.0' in metrics
    # Names nobody registered share one label: clients cannot grow the metric without bound.
    assert 'agent_api_tool_executions_total{status="failed",tool="unknown"} 1.0' in metrics
    assert 'tool="nope"' not in metrics


async def test_openapi_documents_the_tool_routes(app: App) -> None:
    spec = (await app.client.get("/openapi.json")).json()
    execute = spec["paths"]["/v1/tools/execute"]["post"]
    assert execute["summary"] == "Execute one tool call"
    assert {"400", "401", "403", "404", "422", "504"} <= set(execute["responses"])
    example = execute["responses"]["504"]["content"]["application/json"]["example"]
    assert example["error"]["code"] == "TOOL_TIMEOUT"
    request = execute["requestBody"]["content"]["application/json"]
    assert request["examples"]["calculator"]["value"] == README_REQUEST
    batch = spec["paths"]["/v1/tools/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["maxItems"] == 32
    assert spec["paths"]["/v1/tools"]["get"]["summary"]
    json.dumps(spec)


async def test_deeply_nested_arguments_are_refused_not_crashed(app: App) -> None:
    for arguments in ("[" * 5000 + "]" * 5000, '{"a":' * 900 + "1" + "}" * 900):
        body = '{"id": "c", "function": {"name": "calculator", "arguments": ' + arguments + "}}"
        response = await app.client.post(
            "/v1/tools/execute", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text[:200]
