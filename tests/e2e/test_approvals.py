"""Human-in-the-loop approval against real server processes: a pause survives a restart and
the approved call runs exactly once; concurrent approvals have one winner."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from sqlalchemy import select

from agent_api.infrastructure.db.database import create_engine
from agent_api.infrastructure.db.schema import tool_executions
from tests.conftest import live_server
from tests.e2e.conftest import login, server_env
from tests.stub_llm import StubLLM


def start_conversation(base_url: str, token: str, message: str) -> dict:  # type: ignore[type-arg]
    response = httpx.post(
        f"{base_url}/v1/conversations",
        json={"message": message},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    data: dict = response.json()["data"]  # type: ignore[type-arg]
    return data


async def executions(pg_url: str, conversation_id: str) -> list:  # type: ignore[type-arg]
    engine = create_engine(pg_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(tool_executions).where(
                    tool_executions.c.conversation_id == uuid.UUID(conversation_id)
                )
            )
        ).all()
    await engine.dispose()
    return list(rows)


@pytest.fixture
def env(server_pg_url: str, redis_url: str, stub: StubLLM) -> dict[str, str]:
    """A server on the shared e2e database where the calculator needs approval."""
    return server_env(
        server_pg_url,
        redis_url,
        stub,
        TOOLS_REQUIRING_APPROVAL="calculator",
        DB_AUTO_MIGRATE="false",
        # Concurrent approvals race the claim, not the cap on concurrent runs.
        MAX_CONCURRENT_RUNS_PER_KEY="100",
        MAX_CONCURRENT_RUNS_PER_USER="100",
    )


async def test_pending_approval_survives_a_restart_and_runs_once(
    env: dict[str, str], server_pg_url: str, stub: StubLLM
) -> None:
    with live_server(env) as first:
        token = login(first, f"restart-{uuid.uuid4().hex[:8]}@example.com")
        turn = start_conversation(first, token, "What is 12 * 12?")
    assert turn["status"] == "pending_approval"
    conversation_id = turn["conversation"]["id"]

    stub.reset()
    with live_server(env) as second:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=second, headers=headers, timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"/v1/conversations/{conversation_id}/approve", json={"approved": True}
                    )
                    for _ in range(20)
                )
            )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 19
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "NOT_PENDING_APPROVAL"
    }
    winner = next(a for a in answers if a.status_code == 200).json()["data"]
    assert "144" in winner["messages"][-1]["content"]
    rows = await executions(server_pg_url, conversation_id)
    assert [(r.status, r.decision, r.result) for r in rows] == [
        ("succeeded", "approved", {"expression": "12 * 12", "result": 144})
    ]
    # The model saw the tool's result exactly once.
    tool_messages = [m for m in stub.requests[0].body["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1


async def test_rejection_is_told_to_the_model(
    env: dict[str, str], server_pg_url: str, stub: StubLLM
) -> None:
    with live_server(env) as base:
        token = login(base, f"reject-{uuid.uuid4().hex[:8]}@example.com")
        turn = start_conversation(base, token, "What is 2 * 3?")
        stub.reset()
        response = httpx.post(
            f"{base}/v1/conversations/{turn['conversation']['id']}/approve",
            json={"approved": False, "reason": "use your head"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    assert response.status_code == 200
    last = stub.requests[0].body["messages"][-1]
    assert last["role"] == "tool"
    assert json.loads(last["content"]) == {"error": "rejected by the user: use your head"}
    rows = await executions(server_pg_url, turn["conversation"]["id"])
    assert [(r.status, r.decision, r.decision_reason) for r in rows] == [
        ("rejected", "rejected", "use your head")
    ]
