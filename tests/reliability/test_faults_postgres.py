"""PostgreSQL killed and restarted under load, against a real server process.

The server runs on a private PostgreSQL that the test SIGKILLs (postmaster and backends at
once) and starts again on the same port, while client loops keep calling it. The rules:
`/ready` answers 503 within 5 s of the kill; every request needing the database fails fast
with 503 + Retry-After (none hangs past DB_POOL_TIMEOUT + 1 s, none is a 500 or a broken
connection); `/health` stays 200; once PostgreSQL is back, requests succeed again without a
restart of the server (the pool pre-pings its connections).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, register_and_login, server_process
from tests.reliability.private_servers import (
    ClientLoad,
    PrivatePostgres,
    Request,
    Sample,
    private_postgres,
)
from tests.stub_llm import StubLLM

POOL_TIMEOUT = 2.0
# What "fails fast" means here: the pool's own bound plus a second for everything else.
REQUEST_BOUND = POOL_TIMEOUT + 1.0
READY_BOUND = 5.0
CALCULATOR = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "calculator", "arguments": '{"expression": "6 * 7"}'},
}
NEEDS_DATABASE = ("me", "tool", "chat", "ready")


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def server(pg: PrivatePostgres, stub: StubLLM) -> Iterator[str]:
    env = {
        "DATABASE_URL": pg.url,
        "DB_POOL_SIZE": "5",
        "DB_POOL_TIMEOUT": f"{POOL_TIMEOUT:g}s",
        "LLM_BASE_URL": stub.url,
        "LLM_MAX_RETRIES": "0",
        "RATE_LIMIT_PER_MINUTE": "100000",
    }
    with server_process(env) as (_, base_url):
        yield base_url


def requests_for(headers: dict[str, str]) -> dict[str, Request]:
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    def unique(body: dict[str, Any]) -> dict[str, Any]:
        """Its own text: identical concurrent requests of one user are one request retried."""
        return {**body, "messages": [{"role": "user", "content": f"hi {uuid.uuid4().hex[:8]}"}]}

    return {
        "me": lambda c: c.get("/v1/auth/me", headers=headers),
        "tool": lambda c: c.post("/v1/tools/execute", json=CALCULATOR, headers=headers),
        "chat": lambda c: c.post("/v1/chat/completions", json=unique(chat), headers=headers),
        "ready": lambda c: c.get("/ready"),
        "health": lambda c: c.get("/health"),
    }


async def wait_ready_status(client: httpx.AsyncClient, status: int, timeout: float) -> float:
    """Polls /ready until it answers `status`; returns when that happened (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.get("/ready")).status_code == status:
            return time.monotonic()
        await asyncio.sleep(0.05)
    pytest.fail(f"/ready did not answer {status} within {timeout} s")


def describe(samples: list[Sample]) -> str:
    return "; ".join(f"{s.name} {s.status} {s.elapsed:.2f}s {s.error or ''}" for s in samples)


async def test_postgres_killed_under_load_fails_fast_and_recovers(
    server: str, pg: PrivatePostgres
) -> None:
    print("\npostgres:", await outage(server, pg, loops=2))


@pytest.mark.slow
async def test_postgres_killed_again_and_again_never_answers_500_nor_hangs(
    server: str, pg: PrivatePostgres
) -> None:
    """More clients and more kills: a kill that lands in the middle of a statement or a
    commit must be a 503 like any other (it once was a 500)."""
    for _ in range(6):
        print("\npostgres:", await outage(server, pg, loops=5))


async def outage(server: str, pg: PrivatePostgres, *, loops: int) -> str:
    """Kills PostgreSQL under `loops` clients per request kind, starts it again, checks every
    rule on what the clients saw; returns the figures."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        login = await register_and_login(client, f"pg-{uuid.uuid4().hex[:8]}@example.com")
        load = ClientLoad(client, requests_for(bearer(login["access_token"])), loops=loops)
        load.start()
        await asyncio.sleep(0.5)

        killed_at = time.monotonic()
        pg.kill()
        ready_503_at = await wait_ready_status(client, 503, READY_BOUND + 1)
        await asyncio.sleep(1.5)  # an outage under load

        restarted_at = time.monotonic()
        pg.start()
        back_at = time.monotonic()
        ready_200_at = await wait_ready_status(client, 200, 10)
        await asyncio.sleep(0.5)
        samples = await load.stop()

    assert ready_503_at - killed_at < READY_BOUND

    broken = [s for s in samples if s.status is None or (s.status >= 500 and s.status != 503)]
    assert not broken, describe(broken)
    slow = [s for s in samples if s.elapsed > REQUEST_BOUND]
    assert not slow, describe(slow)
    assert all(s.status == 200 for s in samples if s.name == "health")

    before = [s for s in samples if s.started + s.elapsed < killed_at]
    assert before
    assert all(s.ok for s in before), describe([s for s in before if not s.ok])

    # Started once every PostgreSQL process was dead, answered before it came back.
    during = [
        s
        for s in samples
        if s.name in NEEDS_DATABASE
        and s.started > killed_at
        and s.started + s.elapsed < restarted_at
    ]
    assert {s.name for s in during} == set(NEEDS_DATABASE)
    refused = [s for s in during if s.status != 503 or not s.retry_after]
    assert not refused, describe(refused)

    # Back without a restart of the server: everything sent after PostgreSQL accepts
    # connections again succeeds.
    after = [s for s in samples if s.started > back_at]
    assert {s.name for s in after} >= set(NEEDS_DATABASE)
    assert all(s.ok for s in after), describe([s for s in after if not s.ok])
    worst = max(s.elapsed for s in samples if s.started > killed_at and s.started < restarted_at)
    return (
        f"{len(samples)} requests; /ready 503 {ready_503_at - killed_at:.2f}s after the kill; "
        f"slowest request during the outage {worst * 1000:.0f} ms; /ready 200 "
        f"{ready_200_at - back_at:.2f}s after restart; {len(during)} refused with 503"
    )
