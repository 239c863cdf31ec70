"""Redis killed and restarted under load, against a real server process.

The server keeps its rate-limit counters in a private `redis-server` that the test SIGKILLs
and starts again on the same port while client loops keep calling it. The rules: chat and
tools keep working (the limits fail open, counted in `agent_api_rate_limit_fail_open_total`);
login and register fail closed with 503 + Retry-After; `/ready` names Redis as down; nothing
hangs; once Redis is back, login works and the limits apply again without a restart of the
server. (The in-process variant with a paused Redis is tests/integration/
test_rate_limits_redis_down.py.)
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, register_and_login, server_process
from tests.reliability.private_servers import ClientLoad, PrivateRedis, Sample, private_redis
from tests.stub_llm import StubLLM

PASSWORD = "correct horse"
# The limiter's socket timeout is 1 s: no request may wait on a dead Redis longer than that
# plus a second for everything else.
REQUEST_BOUND = 2.0
CALCULATOR = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "calculator", "arguments": '{"expression": "6 * 7"}'},
}
FAIL_OPEN = re.compile(r"^agent_api_rate_limit_fail_open_total (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


def fail_opens(metrics_text: str) -> float:
    match = FAIL_OPEN.search(metrics_text)
    assert match, "agent_api_rate_limit_fail_open_total is not exported"
    return float(match.group(1))


def describe(samples: list[Sample]) -> str:
    return "; ".join(f"{s.name} {s.status} {s.elapsed:.2f}s {s.error or ''}" for s in samples)


async def test_redis_killed_under_load_fails_open_for_work_closed_for_login(
    server_pg_url: str, stub: StubLLM
) -> None:
    with private_redis() as redis:
        env = {
            "DATABASE_URL": server_pg_url,
            "DB_AUTO_MIGRATE": "false",
            "REDIS_URL": redis.url,
            "LLM_BASE_URL": stub.url,
            "LLM_MAX_RETRIES": "0",
            "RATE_LIMIT_PER_MINUTE": "100000",
            # The load logs one account in from one address about ten times a second; the
            # auth limits are not what this test is about, so none of them may refuse it.
            "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
            "AUTH_RATE_LIMIT_PER_IP_EMAIL_PER_MINUTE": "100000",
            "AUTH_RATE_LIMIT_PER_EMAIL_PER_MINUTE": "100000",
        }
        with server_process(env) as (_, base_url):
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                await run_outage(client, redis)


async def run_outage(client: httpx.AsyncClient, redis: PrivateRedis) -> None:
    email = f"redis-{uuid.uuid4().hex[:8]}@example.com"
    headers = bearer((await register_and_login(client, email, PASSWORD))["access_token"])
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    def unique(body: dict[str, Any]) -> dict[str, Any]:
        """Its own text: identical concurrent requests of one user are one request retried."""
        return {**body, "messages": [{"role": "user", "content": f"hi {uuid.uuid4().hex[:8]}"}]}

    credentials = {"email": email, "password": PASSWORD}
    load = ClientLoad(
        client,
        {
            "chat": lambda c: c.post("/v1/chat/completions", json=unique(chat), headers=headers),
            "tool": lambda c: c.post("/v1/tools/execute", json=CALCULATOR, headers=headers),
            "me": lambda c: c.get("/v1/auth/me", headers=headers),
            "login": lambda c: c.post("/v1/auth/login", json=credentials),
        },
        pause=0.05,
    )
    load.start()
    await asyncio.sleep(0.5)
    opened_before = fail_opens((await client.get("/metrics")).text)

    killed_at = time.monotonic()
    redis.kill()
    await asyncio.sleep(2.0)
    ready = await client.get("/ready")
    opened_during = fail_opens((await client.get("/metrics")).text)

    restarted_at = time.monotonic()
    redis.start()
    back_at = time.monotonic()
    login_at = await first_login(client, credentials, timeout=5)
    await asyncio.sleep(0.5)
    me_after = await client.get("/v1/auth/me", headers=headers)
    samples = await load.stop()

    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["checks"]["redis"] == "down"
    assert opened_before == 0
    assert opened_during > 0

    broken = [s for s in samples if s.status is None or (s.status >= 500 and s.status != 503)]
    assert not broken, describe(broken)
    slow = [s for s in samples if s.elapsed > REQUEST_BOUND]
    assert not slow, describe(slow)

    # Chat, tools and everything authenticated: never refused because of Redis.
    work = [s for s in samples if s.name != "login"]
    assert all(s.ok for s in work), describe([s for s in work if not s.ok])
    # Login: refused (503 + Retry-After) only while Redis is down.
    logins_during = [
        s
        for s in samples
        if s.name == "login" and s.started > killed_at and s.started + s.elapsed < restarted_at
    ]
    assert logins_during
    refused = [s for s in logins_during if s.status != 503 or not s.retry_after]
    assert not refused, describe(refused)
    logins_outside = [
        s
        for s in samples
        if s.name == "login" and (s.started + s.elapsed < killed_at or s.started > login_at)
    ]
    assert logins_outside
    assert all(s.ok for s in logins_outside), describe(logins_outside)

    # The limits apply again (their headers are back) without a restart of the server.
    assert me_after.status_code == 200
    assert "x-ratelimit-remaining" in me_after.headers
    worst = max(s.elapsed for s in samples if killed_at < s.started < restarted_at)
    print(
        f"\nredis: {len(samples)} requests, {len(logins_during)} logins refused with 503, "
        f"{opened_during:.0f} requests let through unlimited; slowest request during the "
        f"outage {worst * 1000:.0f} ms; login works again {login_at - back_at:.2f}s after restart"
    )


async def first_login(
    client: httpx.AsyncClient, credentials: dict[str, str], timeout: float
) -> float:
    """Logs in until it works; returns when it first did (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.post("/v1/auth/login", json=credentials)).status_code == 200:
            return time.monotonic()
        await asyncio.sleep(0.05)
    pytest.fail(f"login did not work again within {timeout} s of Redis being back")
