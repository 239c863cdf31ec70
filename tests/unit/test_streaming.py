"""The SSE keepalive wrapper: pings while waiting, items in order, errors passed on, and
closing it cancels the source in the task that owns it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from agent_api.api.streaming import sse_data, with_keepalive


async def slow(items: list[str], pause: float, log: list[str]) -> AsyncIterator[str]:
    try:
        for item in items:
            await asyncio.sleep(pause)
            yield item
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
    finally:
        log.append("closed")


async def test_pings_while_the_source_is_slow_then_items_in_order() -> None:
    log: list[str] = []
    out = [item async for item in with_keepalive(slow(["a", "b"], 0.12, log), interval=0.05)]
    assert [x for x in out if x is not None] == ["a", "b"]
    assert out.count(None) >= 2
    assert log == ["closed"]


async def test_source_errors_reach_the_consumer() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a"
        raise ValueError("boom")

    got: list[str | None] = []

    async def consume() -> None:
        async for item in with_keepalive(failing(), interval=1):
            got.append(item)

    with pytest.raises(ValueError, match="boom"):
        await consume()
    assert got == ["a"]


async def test_closing_early_cancels_the_source_and_waits_for_its_cleanup() -> None:
    log: list[str] = []
    stream = with_keepalive(slow(["a", "b", "c"], 0.2, log), interval=1)
    async with contextlib.aclosing(stream):
        async for item in stream:
            assert item == "a"
            break
    assert log[-1] == "closed"


def test_sse_data_frames_compact_json_with_an_id() -> None:
    assert sse_data({"a": 1, "b": "é"}, 7) == 'id: 7\ndata: {"a":1,"b":"é"}\n\n'.encode()
