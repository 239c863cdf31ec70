"""LimitsRateLimiter on the shared test Redis (under a unique key prefix, removed afterwards):
exact under concurrency for both strategies, directly and through the whole app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from agent_api.infrastructure.rate_limiter import LimitsRateLimiter
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.unit.fakes import FakeHasher


@pytest.fixture
async def limiter(redis_url: str, prefix: str) -> AsyncIterator[LimitsRateLimiter]:
    limiter = LimitsRateLimiter.on_redis(redis_url, key_prefix=prefix)
    yield limiter
    await limiter.aclose()


@pytest.mark.parametrize("window", [60, 86_400], ids=["moving-window", "sliding-counter"])
async def test_exactly_the_limit_passes_a_concurrent_burst(
    limiter: LimitsRateLimiter, window: int
) -> None:
    limit = 25
    states = await asyncio.gather(*(limiter.hit("burst", limit, window) for _ in range(5 * limit)))
    assert sum(state.allowed for state in states) == limit
    assert not (await limiter.hit("burst", limit, window)).allowed


async def test_remaining_and_reset(limiter: LimitsRateLimiter) -> None:
    states = [await limiter.hit("count", 3, 60) for _ in range(4)]
    assert [s.allowed for s in states] == [True, True, True, False]
    assert [s.remaining for s in states] == [2, 1, 0, 0]
    assert all(0 < s.reset_after <= 60 for s in states)


async def test_counters_live_under_the_prefix(
    limiter: LimitsRateLimiter, redis_url: str, prefix: str
) -> None:
    await limiter.hit("user:1:minute", 5, 60)
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    finally:
        await client.aclose()
    assert len(keys) == 1
    assert b"user:1:minute" in keys[0]


async def test_the_app_on_redis_is_exact_under_concurrency(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    limit = 10
    settings = make_settings(tmp_path, redis_url=redis_url, rate_limit_per_minute=limit)
    limiter = LimitsRateLimiter.on_redis(redis_url, key_prefix=prefix)
    try:
        async with running_app(settings, hasher=FakeHasher(), rate_limiter=limiter) as client:
            token = (await register_and_login(client))["access_token"]
            created = await client.post("/v1/api-keys", json={"name": "k"}, headers=bearer(token))
            key = created.json()["data"]["key"]
            answers = await asyncio.gather(
                *(client.get("/v1/auth/me", headers=bearer(key)) for _ in range(5 * limit))
            )
    finally:
        await limiter.aclose()  # ours: the app leaves what it is given open
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == limit
    assert statuses.count(429) == 4 * limit
    refused = next(a for a in answers if a.status_code == 429)
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
