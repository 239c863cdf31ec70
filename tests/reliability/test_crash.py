"""Crashes: the server process is SIGKILLed (no shutdown, no cleanup) and a new one is started
on the same database.

- While approvals are pending: they survive, and each approved tool runs exactly once (one
  `tool_executions` row, `succeeded`), however many approvals race for it.
- While runs are streaming: the interrupted conversations are marked `failed` once their
  lease runs out (the new process sweeps every half lease), not left `running`, and accept
  new messages.
(The graceful variant, a SIGTERM restart while an approval is pending, is
tests/e2e/test_approvals.py.)
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent_api.infrastructure.db.database import create_engine
from agent_api.infrastructure.db.schema import conversations, tool_executions
from tests.conftest import bearer, register_and_login, server_process
from tests.stub_llm import Reply, StubLLM

LEASE = 2.0
# An interrupted run's lease runs out at most a lease after the kill (it was renewed every
# third of one); the new process sweeps at its start and every half lease after.
SWEEP_BOUND = LEASE / 2 + 1.0  # after both the lease expired and the new process is up
CONVERSATIONS = 3


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@dataclass
class Crash:
    """What the killed process left behind, and the process started after it."""

    base_url: str
    headers: dict[str, str]
    pending: list[str]  # conversations paused for an approval at the kill
    streaming: list[str]  # conversations whose run was streaming at the kill
    killed_at: float
    up_at: float


@pytest.fixture(scope="module")
async def crash(server_pg_url: str, stub: StubLLM) -> AsyncIterator[Crash]:
    """Pauses conversations for approval and starts streamed runs, SIGKILLs the server, then
    starts a new one on the same database (the same configuration: the calculator needs
    approval; the streamed runs call no tool)."""
    env = {
        "DATABASE_URL": server_pg_url,
        "DB_AUTO_MIGRATE": "false",
        "LLM_BASE_URL": stub.url,
        "LLM_MAX_RETRIES": "0",
        "AGENT_RUN_LEASE": f"{LEASE:g}s",
        "TOOLS_REQUIRING_APPROVAL": "calculator",
        "RATE_LIMIT_PER_MINUTE": "100000",
        # Concurrent approvals race for the conversation's claim, not for run slots.
        "MAX_CONCURRENT_RUNS_PER_KEY": "100",
        "MAX_CONCURRENT_RUNS_PER_USER": "100",
    }
    stub.reset()
    with server_process(env) as (first, base_url):
        headers, pending, streaming, killed_at = await crash_under_way(first, base_url, stub)
    # Left behind as `running`, and nobody to finish them.
    assert {r.status for r in await rows(server_pg_url, conversations, streaming)} == {"running"}
    with server_process(env) as (_, base_url):
        yield Crash(base_url, headers, pending, streaming, killed_at, time.monotonic())


async def crash_under_way(
    process: subprocess.Popen[bytes], base_url: str, stub: StubLLM
) -> tuple[dict[str, str], list[str], list[str], float]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        login = await register_and_login(client, f"crash-{uuid.uuid4().hex[:8]}@example.com")
        headers = bearer(login["access_token"])
        turns = await asyncio.gather(
            *(
                client.post(
                    "/v1/conversations", json={"message": f"What is {n} * 12?"}, headers=headers
                )
                for n in range(1, CONVERSATIONS + 1)
            )
        )
        assert [t.status_code for t in turns] == [201] * CONVERSATIONS
        assert {t.json()["data"]["status"] for t in turns} == {"pending_approval"}

        words = " ".join(f"word{i}" for i in range(400))
        stub.enqueue(*(Reply(text=words, chunk_delay=0.05) for _ in range(CONVERSATIONS)))
        streams = await asyncio.gather(
            *(start_stream(client, headers) for _ in range(CONVERSATIONS))
        )
        process.kill()
        killed_at = time.monotonic()
        process.wait(5)
        for _, response, lines in streams:
            with pytest.raises(httpx.HTTPError):  # cut off: no final event, no [DONE]
                async for _ in lines:
                    pass
            await response.aclose()
    pending = [t.json()["data"]["conversation"]["id"] for t in turns]
    return headers, pending, [conversation_id for conversation_id, _, _ in streams], killed_at


async def rows(pg_url: str, table: Any, conversation_ids: list[str]) -> list[Any]:
    column = table.c.id if table is conversations else table.c.conversation_id
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            ids = [uuid.UUID(c) for c in conversation_ids]
            return list((await conn.execute(select(table).where(column.in_(ids)))).all())
    finally:
        await engine.dispose()


async def start_stream(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[str, httpx.Response, AsyncIterator[str]]:
    """Starts a streamed conversation; returns its id, the response and the rest of its
    lines once content is flowing."""
    request = client.build_request(
        "POST", "/v1/conversations", json={"message": "talk", "stream": True}, headers=headers
    )
    response = await client.send(request, stream=True)
    assert response.status_code == 201, await response.aread()
    lines = response.aiter_lines()
    async for line in lines:
        if '"type":"content"' in line:
            break
    return response.headers["x-conversation-id"], response, lines


async def test_runs_interrupted_by_a_kill_are_marked_failed_not_left_running(
    crash: Crash,
) -> None:
    async with httpx.AsyncClient(
        base_url=crash.base_url, headers=crash.headers, timeout=30
    ) as client:
        failed_at = await wait_all_failed(client, crash.streaming, timeout=LEASE + SWEEP_BOUND + 5)
        again = [
            await client.post(f"/v1/conversations/{c}/messages", json={"message": "hi"})
            for c in crash.streaming
        ]
    sweepable_at = max(crash.up_at, crash.killed_at + LEASE)
    assert failed_at - sweepable_at < SWEEP_BOUND, failed_at - sweepable_at
    for response in again:
        assert response.status_code == 200, response.text
        assert response.json()["data"]["conversation"]["status"] == "active"
    print(
        f"\ncrash: interrupted runs marked failed {failed_at - crash.killed_at:.2f}s after the "
        f"kill, {failed_at - crash.up_at:.2f}s after the new process was up "
        f"({crash.up_at - crash.killed_at:.2f}s after the kill)"
    )


async def wait_all_failed(client: httpx.AsyncClient, ids: list[str], timeout: float) -> float:
    """Polls until every conversation is `failed`; returns when (monotonic). A conversation
    leaving `running` for anything else fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = set()
        for conversation_id in ids:
            detail = await client.get(f"/v1/conversations/{conversation_id}")
            states.add(detail.json()["data"]["conversation"]["status"])
        assert states <= {"running", "failed"}, states
        if states == {"failed"}:
            return time.monotonic()
        await asyncio.sleep(0.1)
    pytest.fail(f"interrupted runs still not failed {timeout} s after the restart")


async def test_pending_approvals_survive_a_kill_and_run_exactly_once(
    crash: Crash, server_pg_url: str, stub: StubLLM
) -> None:
    stub.reset()
    async with httpx.AsyncClient(
        base_url=crash.base_url, headers=crash.headers, timeout=30
    ) as client:
        # The new process's sweep leaves pauses alone.
        states = [await client.get(f"/v1/conversations/{c}") for c in crash.pending]
        assert {s.json()["data"]["conversation"]["status"] for s in states} == {"pending_approval"}
        approvals = await asyncio.gather(
            *(
                client.post(f"/v1/conversations/{c}/approve", json={"approved": True})
                for c in crash.pending
                for _ in range(5)
            )
        )
    by_conversation = [approvals[i * 5 : i * 5 + 5] for i in range(CONVERSATIONS)]
    for n, answers in enumerate(by_conversation, start=1):
        assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
        winner = next(a for a in answers if a.status_code == 200).json()["data"]
        assert str(n * 12) in winner["messages"][-1]["content"]
        assert winner["conversation"]["status"] == "active"

    executions = await rows(server_pg_url, tool_executions, crash.pending)
    assert sorted((r.status, r.decision, r.result["result"]) for r in executions) == [
        ("succeeded", "approved", n * 12) for n in range(1, CONVERSATIONS + 1)
    ]
    # The model was asked to go on once per conversation, with the tool's result once.
    assert len(stub.requests) == CONVERSATIONS
    for request in stub.requests:
        assert [m["role"] for m in request.body["messages"]].count("tool") == 1
