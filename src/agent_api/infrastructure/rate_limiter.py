"""LimitsRateLimiter: the RateLimiter port on the `limits` library, in Redis or in memory.

Strategy per window length (both atomic, so exact under concurrency on either store):
- windows up to MOVING_WINDOW_MAX_SECONDS (the per-minute limits) use the **moving window**:
  an exact log of the last `limit` hits; memory grows with the limit, which is bounded.
- longer windows (the daily budget) use the **sliding window counter**: two counters per key,
  the previous window weighted as if its hits were spread evenly. Constant memory whatever
  the limit, and no fixed-window burst of 2x the limit at a boundary.

Redis: `redis-py` asyncio through `implementation="redispy"`, on its own connection pool with
short socket timeouts and no retries, so a dead or hung Redis costs a request at most
`timeout` seconds, and after a failure the store is not tried again for `cooldown` seconds
(requests then fail at once). Every store error becomes `ServiceUnavailable`; the caller
decides whether that fails open or closed. Nothing connects at construction: a Redis that is
down at startup, or restarted later, is picked up by the next attempt (no restart needed).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, NoReturn

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.util import WindowStats
from redis.asyncio import BlockingConnectionPool, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from agent_api.application.ports_limits import WindowState
from agent_api.domain.errors import ServiceUnavailable

MOVING_WINDOW_MAX_SECONDS = 3600
DEFAULT_KEY_PREFIX = "agent-api:rl"
NAMESPACE = "v1"

log = structlog.get_logger("agent_api.rate_limiter")

_STORE_ERRORS = (RedisError, StorageError, OSError, TimeoutError)


def _state(allowed: bool, limit: int, stats: WindowStats) -> WindowState:
    return WindowState(
        allowed=allowed,
        limit=limit,
        remaining=max(0, stats.remaining),
        reset_after=max(0.0, stats.reset_time - time.time()),
    )


def _storage_uri(redis_url: str) -> str:
    """`redis://...` -> the `limits` scheme `async+redis://...` (same for rediss, unix)."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


class LimitsRateLimiter:
    """Implements `RateLimiter`. Build with `in_memory()` or `on_redis(url)`."""

    def __init__(
        self,
        storage: Storage,
        *,
        pool: ConnectionPool | None = None,
        cooldown: float = 1.0,
    ) -> None:
        self._storage = storage
        self._pool = pool
        self._cooldown = cooldown
        self._down_until = 0.0
        self._moving = MovingWindowRateLimiter(storage)
        self._sliding = SlidingWindowCounterRateLimiter(storage)

    @classmethod
    def in_memory(cls) -> LimitsRateLimiter:
        """Per-process counters (embedded mode: one process, nothing shared)."""
        return cls(MemoryStorage())

    @classmethod
    def on_redis(
        cls,
        redis_url: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = 1.0,
        cooldown: float = 1.0,
        max_connections: int = 64,
    ) -> LimitsRateLimiter:
        """Counters in Redis under `key_prefix`, shared by every replica. At most
        `max_connections` connections; a request waits up to `timeout` for a free one (then
        fails open). An authenticated request makes up to nine calls (the failure check, then
        hit and statistics of four windows), so a burst of hundreds needs this many."""
        pool = BlockingConnectionPool.from_url(
            redis_url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        options: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(
            _storage_uri(redis_url), implementation="redispy", key_prefix=key_prefix, **options
        )
        return cls(storage, pool=pool, cooldown=cooldown)

    async def hit(self, key: str, limit: int, window_seconds: int) -> WindowState:
        """See the port. Raises ServiceUnavailable when the store fails (or failed less than
        `cooldown` seconds ago)."""
        item, strategy = self._window(limit, window_seconds)
        try:
            allowed = await strategy.hit(item, key)
            stats = await strategy.get_window_stats(item, key)
        except _STORE_ERRORS as exc:
            await self._store_failed(exc)
        return _state(allowed, limit, stats)

    async def peek(self, key: str, limit: int, window_seconds: int) -> WindowState:
        """See the port: one read of the window's statistics. Raises ServiceUnavailable like
        `hit`."""
        item, strategy = self._window(limit, window_seconds)
        try:
            stats = await strategy.get_window_stats(item, key)
        except _STORE_ERRORS as exc:
            await self._store_failed(exc)
        return _state(stats.remaining > 0, limit, stats)

    def _window(self, limit: int, window_seconds: int) -> tuple[RateLimitItem, RateLimiter]:
        """The item and strategy for a window. Raises ServiceUnavailable during a cooldown."""
        if time.monotonic() < self._down_until:
            raise ServiceUnavailable("rate limit store unavailable", retry_after=1)
        item = RateLimitItemPerSecond(limit, window_seconds, namespace=NAMESPACE)
        if window_seconds <= MOVING_WINDOW_MAX_SECONDS:
            return item, self._moving
        return item, self._sliding

    async def _store_failed(self, exc: BaseException) -> NoReturn:
        if time.monotonic() >= self._down_until:  # once per outage, not per request
            log.warning("rate limit store unreachable", error=f"{type(exc).__name__}: {exc}")
        self._down_until = time.monotonic() + self._cooldown
        await self._drop_idle_connections()
        raise ServiceUnavailable(
            "rate limit store unavailable", retry_after=max(1, math.ceil(self._cooldown))
        ) from exc

    async def _drop_idle_connections(self) -> None:
        # The idle connections lead to the same failed server. A connection the server reset
        # looks healthy to redis-py until it is used, so after Redis restarts each of them
        # would fail once more, each failure starting another cooldown (login refused for
        # seconds while Redis is fine). Reconnecting them all at the next attempt is cheap.
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.disconnect(inuse_connections=False)

    async def aclose(self) -> None:
        """Closes the Redis connections (memory storage: stops its expiry task)."""
        if self._pool is not None:
            await self._pool.aclose()
        timer = getattr(self._storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
