"""RedisRunSlots on the shared test Redis (under a unique key prefix, removed afterwards):
atomic under concurrency, all or nothing across holders, a crashed holder's slot freed when
its lease runs out; and the cap held across two app instances sharing Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from agent_api.infrastructure.run_slots import RedisRunSlots
from tests.api.test_run_caps import GatedChatModel, chat, keys_for, numbered
from tests.conftest import bearer, make_settings, running_app
from tests.unit.fakes import FakeHasher


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_exactly_the_limit_is_taken_by_a_concurrent_burst(
    redis: Redis, redis_url: str, prefix: str
) -> None:
    slots = RedisRunSlots(redis, key_prefix=prefix)
    other_client = Redis.from_url(redis_url)  # a second connection pool, as another replica
    other = RedisRunSlots(other_client, key_prefix=prefix)
    holders = [("key:a", 5), ("user:u", 100)]
    results = await asyncio.gather(
        *((slots if i % 2 else other).acquire(f"run-{i}", holders, 60) for i in range(50))
    )
    assert sum(r is None for r in results) == 5
    assert {r for r in results if r is not None} == {0}
    # All or nothing: the refused runs were not added to the user's set either.
    assert await redis.zcard(f"{prefix}:runs:user:u") == 5
    assert 0 < await redis.pttl(f"{prefix}:runs:key:a") <= 60_000
    await other_client.aclose()


async def test_the_first_full_holder_is_reported_and_release_frees(
    redis: Redis, prefix: str
) -> None:
    slots = RedisRunSlots(redis, key_prefix=prefix)
    assert await slots.acquire("r1", [("key:a", 5), ("user:u", 1)], 60) is None
    assert await slots.acquire("r2", [("key:b", 5), ("user:u", 1)], 60) == 1
    await slots.release("r1", ["key:a", "user:u"])
    await slots.release("r1", ["key:a", "user:u"])  # idempotent
    assert await slots.acquire("r2", [("key:b", 5), ("user:u", 1)], 60) is None


async def test_a_crashed_holder_is_released_when_its_lease_runs_out(
    redis: Redis, prefix: str
) -> None:
    slots = RedisRunSlots(redis, key_prefix=prefix)
    holders = [("key:a", 1), ("user:u", 1)]
    assert await slots.acquire("crashed", holders, 0.3) is None  # never renewed nor released
    assert await slots.acquire("next", holders, 60) == 0
    await asyncio.sleep(0.5)  # past the lease
    assert await slots.acquire("next", holders, 60) is None


async def test_a_renewed_lease_holds(redis: Redis, prefix: str) -> None:
    slots = RedisRunSlots(redis, key_prefix=prefix)
    holders = [("key:a", 1)]
    assert await slots.acquire("alive", holders, 0.3) is None
    await slots.renew("alive", ["key:a"], 30)
    await asyncio.sleep(0.5)  # past the first lease, not the renewed one
    assert await slots.acquire("next", holders, 60) == 0
    assert await redis.pttl(f"{prefix}:runs:key:a") > 20_000


async def test_the_cap_holds_across_two_app_instances(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    settings = make_settings(
        tmp_path, redis_url=redis_url, rate_limit_key_prefix=prefix, max_concurrent_runs_per_key=1
    )
    first_model, second_model = GatedChatModel(), GatedChatModel()
    async with (
        running_app(settings, hasher=FakeHasher(), chat_model=first_model) as first,
        running_app(settings, hasher=FakeHasher(), chat_model=second_model) as second,
    ):
        headers = bearer((await keys_for(first, "ada@example.com"))[0])
        running = asyncio.create_task(
            first.post("/v1/chat/completions", json=chat(stream=True), headers=headers)
        )
        await first_model.held(1)
        async with asyncio.timeout(10):
            refused = await second.post(
                "/v1/chat/completions", json=numbered(chat(stream=False), 2), headers=headers
            )
        first_model.gate.set()
        second_model.gate.set()
        assert (await running).status_code == 200
        after = await second.post(
            "/v1/chat/completions", json=numbered(chat(stream=False), 3), headers=headers
        )
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert after.status_code == 200, after.text
