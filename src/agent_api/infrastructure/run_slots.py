"""RunSlots adapters: in Redis (shared by every replica) and in process memory (embedded mode).

Redis: one sorted set per holder, member = run id, score = lease expiry in milliseconds of the
Redis server's clock (one clock for every replica). `acquire` is one Lua script, so dropping
expired leases, counting and adding are atomic across replicas and holders (all or nothing).
Each set expires with its last lease, so idle holders leave nothing behind. The holder keys of
one run may live in different hash slots: this needs a single Redis (or a primary), not
Redis Cluster. Store errors become ServiceUnavailable; the caller decides to fail open.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from agent_api.domain.errors import ServiceUnavailable

DEFAULT_KEY_PREFIX = "agent-api:rl"

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_EXPIRE_WITH_LAST_LEASE = """
local function expire_with_last_lease(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end
"""

# KEYS: the holders' sets. ARGV: run id, lease (ms), then each holder's limit.
# Returns 0 when taken, else the 1-based index of the first full holder.
ACQUIRE = (
    _NOW_MS
    + _EXPIRE_WITH_LAST_LEASE
    + """
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, ARGV[1])
      and redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[1])
  expire_with_last_lease(key)
end
return 0
"""
)

# KEYS: the holders' sets. ARGV: run id, lease (ms). Only a member still present is renewed.
RENEW = (
    _NOW_MS
    + _EXPIRE_WITH_LAST_LEASE
    + """
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[2]), ARGV[1])
  expire_with_last_lease(key)
end
return 0
"""
)

_STORE_ERRORS = (RedisError, OSError, TimeoutError)


class RedisRunSlots:
    """Implements `RunSlots` in Redis under `key_prefix` (one round trip per call)."""

    def __init__(
        self, redis: Redis, *, key_prefix: str = DEFAULT_KEY_PREFIX, owned: bool = False
    ) -> None:
        self._redis = redis
        self._owned = owned
        self._prefix = f"{key_prefix}:runs:"
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)

    @classmethod
    def on_redis(
        cls, redis_url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX, timeout: float = 1.0
    ) -> RedisRunSlots:
        """On a client of its own: short timeouts and no retries, so a dead or hung Redis
        costs a run at most `timeout` seconds before it fails open. Close with `aclose`."""
        client = Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, key_prefix=key_prefix, owned=True)

    async def aclose(self) -> None:
        """Closes the client when this adapter built it (`on_redis`)."""
        if self._owned:
            await self._redis.aclose()

    def _keys(self, holders: Sequence[str]) -> list[str]:
        return [self._prefix + holder for holder in holders]

    async def acquire(
        self, run_id: str, holders: Sequence[tuple[str, int]], lease_seconds: float
    ) -> int | None:
        keys = self._keys([holder for holder, _ in holders])
        args: list[Any] = [run_id, _ms(lease_seconds), *(limit for _, limit in holders)]
        try:
            full = int(await self._acquire(keys=keys, args=args))
        except _STORE_ERRORS as exc:
            raise ServiceUnavailable("run slot store unavailable", retry_after=1) from exc
        return None if full == 0 else full - 1

    async def renew(self, run_id: str, holders: Sequence[str], lease_seconds: float) -> None:
        try:
            await self._renew(keys=self._keys(holders), args=[run_id, _ms(lease_seconds)])
        except _STORE_ERRORS as exc:
            raise ServiceUnavailable("run slot store unavailable", retry_after=1) from exc

    async def release(self, run_id: str, holders: Sequence[str]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self._keys(holders):
                    pipe.zrem(key, run_id)
                await pipe.execute()
        except _STORE_ERRORS as exc:
            raise ServiceUnavailable("run slot store unavailable", retry_after=1) from exc


class MemoryRunSlots:
    """Implements `RunSlots` in this process (embedded mode: one process, nothing shared).
    Atomic because no method awaits between reading and writing."""

    def __init__(self) -> None:
        # holder -> run id -> lease expiry (time.monotonic()).
        self._leases: dict[str, dict[str, float]] = {}

    def _live(self, holder: str, now: float) -> dict[str, float]:
        leases = self._leases.setdefault(holder, {})
        for run_id in [r for r, until in leases.items() if until <= now]:
            del leases[run_id]
        return leases

    async def acquire(
        self, run_id: str, holders: Sequence[tuple[str, int]], lease_seconds: float
    ) -> int | None:
        now = time.monotonic()
        for index, (holder, limit) in enumerate(holders):
            live = self._live(holder, now)
            if run_id not in live and len(live) >= limit:
                return index
        for holder, _ in holders:
            self._leases[holder][run_id] = now + lease_seconds
        return None

    async def renew(self, run_id: str, holders: Sequence[str], lease_seconds: float) -> None:
        now = time.monotonic()
        for holder in holders:
            live = self._live(holder, now)
            if run_id in live:
                live[run_id] = now + lease_seconds

    async def release(self, run_id: str, holders: Sequence[str]) -> None:
        for holder in holders:
            leases = self._leases.get(holder, {})
            leases.pop(run_id, None)
            if not leases:
                self._leases.pop(holder, None)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
