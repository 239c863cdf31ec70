"""LimitsRateLimiter on in-process memory (embedded mode): exact under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from agent_api.infrastructure.rate_limiter import LimitsRateLimiter


@pytest.fixture
async def limiter() -> AsyncIterator[LimitsRateLimiter]:
    limiter = LimitsRateLimiter.in_memory()
    yield limiter
    await limiter.aclose()


@pytest.mark.parametrize("window", [60, 86_400], ids=["moving-window", "sliding-counter"])
async def test_exactly_the_limit_passes_a_concurrent_burst(
    limiter: LimitsRateLimiter, window: int
) -> None:
    limit = 20
    key = f"k-{uuid.uuid4()}"
    states = await asyncio.gather(*(limiter.hit(key, limit, window) for _ in range(5 * limit)))
    assert sum(state.allowed for state in states) == limit
    assert min(state.remaining for state in states) == 0
    # The refused hits were not counted, and the next one is refused as well.
    assert not (await limiter.hit(key, limit, window)).allowed


async def test_remaining_counts_down_and_reset_is_within_the_window(
    limiter: LimitsRateLimiter,
) -> None:
    key = f"k-{uuid.uuid4()}"
    states = [await limiter.hit(key, 3, 60) for _ in range(4)]
    assert [s.allowed for s in states] == [True, True, True, False]
    assert [s.remaining for s in states] == [2, 1, 0, 0]
    assert all(0 < s.reset_after <= 60 for s in states)
    assert states[0].limit == 3


async def test_keys_do_not_share_counters(limiter: LimitsRateLimiter) -> None:
    first, second = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    assert (await limiter.hit(first, 1, 60)).allowed
    assert not (await limiter.hit(first, 1, 60)).allowed
    assert (await limiter.hit(second, 1, 60)).allowed
