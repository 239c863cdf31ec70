"""Concurrency guarantees through the HTTP API of a real server process on PostgreSQL and Redis:
races are decided by the database's row locks and Redis's atomic scripts, not by luck.

- 50 concurrent approvals of one pending call: one 200, 49 409 NOT_PENDING_APPROVAL, and the
  approved tool ran once.
- Concurrent refreshes of one refresh token: one new pair, the others 401, and the reuse
  revokes the whole session, so even the winner's new tokens stop working.
- A key limited to L requests per minute, sent 5L concurrent requests: exactly L pass.
- 10 concurrent messages to one conversation: one 200, the others 409 CONVERSATION_BUSY, and the
  stored history stays in order (user, assistant, ... with consecutive seq numbers).

The `slow` variants repeat each race with more contenders.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from agent_api.infrastructure.db.database import create_engine
from agent_api.infrastructure.db.schema import tool_executions
from tests.conftest import bearer
from tests.reliability.conftest import new_account
from tests.stub_llm import Reply, StubLLM

TIMEOUT = httpx.Timeout(60)


async def _race(
    base_url: str, n: int, method: str, path: str, **kwargs: Any
) -> tuple[list[httpx.Response], float]:
    """`n` identical requests released at once, each on its own connection; the answers and
    the wall time of the whole race in seconds."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=limits) as client:
        # Open the connections first, so the race is about the server, not TCP handshakes.
        await asyncio.gather(*(client.get("/health") for _ in range(n)))
        started = time.monotonic()
        answers = await asyncio.gather(*(client.request(method, path, **kwargs) for _ in range(n)))
        return list(answers), time.monotonic() - started


def _codes(answers: list[httpx.Response]) -> set[str]:
    return {a.json()["error"]["code"] for a in answers if a.status_code >= 400}


# --- approvals -------------------------------------------------------------------------------


async def _executions(pg_url: str, conversation_id: str) -> int:
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(tool_executions)
                .where(tool_executions.c.conversation_id == uuid.UUID(conversation_id))
            )
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def _approval_race(server: str, server_pg_url: str, n: int) -> None:
    token = new_account(server)["access_token"]
    response = httpx.post(
        f"{server}/v1/conversations",
        json={"message": "What is 12 * 12?"},
        headers=bearer(token),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    turn = response.json()["data"]
    assert turn["status"] == "pending_approval"
    conversation_id = turn["conversation"]["id"]

    answers, seconds = await _race(
        server,
        n,
        "POST",
        f"/v1/conversations/{conversation_id}/approve",
        json={"approved": True},
        headers=bearer(token),
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * (n - 1)
    assert _codes(answers) == {"NOT_PENDING_APPROVAL"}
    winner = next(a for a in answers if a.status_code == 200).json()["data"]
    assert "144" in winner["messages"][-1]["content"]
    assert await _executions(server_pg_url, conversation_id) == 1
    print(f"\n{n} concurrent approvals decided in {seconds * 1000:.0f} ms")


async def test_of_50_concurrent_approvals_exactly_one_runs_the_tool_once(
    server: str, server_pg_url: str
) -> None:
    await _approval_race(server, server_pg_url, 50)


@pytest.mark.slow
async def test_of_200_concurrent_approvals_exactly_one_runs_the_tool_once(
    server: str, server_pg_url: str
) -> None:
    for _ in range(3):
        await _approval_race(server, server_pg_url, 200)


# --- refresh token rotation ------------------------------------------------------------------


async def _refresh_race(server: str, n: int) -> None:
    login = new_account(server)
    answers, seconds = await _race(
        server, n, "POST", "/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [401] * (n - 1)
    assert _codes(answers) == {"INVALID_TOKEN"}
    # The reuse revoked the whole session: the winner's new pair is dead too, and so is the
    # access token from the login.
    new = next(a for a in answers if a.status_code == 200).json()["data"]
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT) as client:
        for access in (new["access_token"], login["access_token"]):
            assert (await client.get("/v1/auth/me", headers=bearer(access))).status_code == 401
        again = await client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
        assert again.status_code == 401
    print(f"\n{n} concurrent refreshes decided in {seconds * 1000:.0f} ms")


async def test_concurrent_refreshes_of_one_token_have_one_winner_and_revoke_the_session(
    server: str,
) -> None:
    await _refresh_race(server, 20)


async def test_a_refresh_without_a_race_keeps_the_session(server: str) -> None:
    """The contrast to the race above: one refresh at a time rotates and keeps working."""
    login = new_account(server)
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT) as client:
        first = await client.post(
            "/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
        )
        assert first.status_code == 200
        pair = first.json()["data"]
        second = await client.post(
            "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert second.status_code == 200
        access = second.json()["data"]["access_token"]
        assert (await client.get("/v1/auth/me", headers=bearer(access))).status_code == 200


@pytest.mark.slow
async def test_of_100_concurrent_refreshes_one_wins_and_the_session_is_revoked(
    server: str,
) -> None:
    for _ in range(3):
        await _refresh_race(server, 100)


# --- rate limits -----------------------------------------------------------------------------


async def _limit_race(server: str, limit: int) -> None:
    token = new_account(server)["access_token"]
    response = httpx.post(
        f"{server}/v1/api-keys",
        json={"name": "limited", "rate_limit_per_minute": limit},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    key = response.json()["data"]["key"]

    answers, seconds = await _race(server, 5 * limit, "GET", "/v1/tools", headers=bearer(key))

    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == limit, sorted(statuses)
    assert statuses.count(429) == 4 * limit
    assert _codes(answers) == {"RATE_LIMITED"}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
    print(f"\n{5 * limit} requests against a limit of {limit}/min in {seconds * 1000:.0f} ms")


async def test_a_key_limited_to_l_per_minute_gets_exactly_l_of_5l_concurrent_requests(
    server: str,
) -> None:
    await _limit_race(server, 10)


@pytest.mark.slow
async def test_exactly_l_of_5l_concurrent_requests_pass_with_a_large_l(server: str) -> None:
    await _limit_race(server, 100)


# --- one run per conversation ----------------------------------------------------------------


def _assert_history_in_order(messages: list[dict[str, Any]], turns: int) -> None:
    """user, assistant, user, assistant... with seq numbers 1, 2, 3... (or consecutive from
    the first), one user message per turn that ran."""
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant"] * turns, roles
    assert all(m["is_complete"] for m in messages)


async def _busy_race(server: str, stub: StubLLM, n: int) -> None:
    token = new_account(server)["access_token"]
    response = httpx.post(
        f"{server}/v1/conversations", json={"message": "Hello"}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    conversation_id = response.json()["data"]["conversation"]["id"]

    # The winner's model call takes a while, so every other request arrives during the run.
    stub.enqueue(Reply(text="the one answer", delay=1.5))
    answers, seconds = await _race(
        server,
        n,
        "POST",
        f"/v1/conversations/{conversation_id}/messages",
        json={"message": "Next"},
        headers=bearer(token),
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * (n - 1)
    assert _codes(answers) == {"CONVERSATION_BUSY"}
    busy = [a for a in answers if a.status_code == 409]
    assert all(a.headers["x-should-retry"] == "false" for a in busy)

    detail = httpx.get(f"{server}/v1/conversations/{conversation_id}", headers=bearer(token))
    messages = detail.json()["data"]["messages"]
    _assert_history_in_order(messages, turns=2)
    assert [m["content"] for m in messages[2:]] == ["Next", "the one answer"]
    print(f"\n{n} concurrent messages to one conversation decided in {seconds * 1000:.0f} ms")


async def test_of_10_concurrent_messages_to_one_conversation_one_runs_and_history_is_ordered(
    server: str, stub: StubLLM
) -> None:
    await _busy_race(server, stub, 10)


@pytest.mark.slow
async def test_of_50_concurrent_messages_one_runs_and_history_is_ordered(
    server: str, stub: StubLLM
) -> None:
    await _busy_race(server, stub, 50)
