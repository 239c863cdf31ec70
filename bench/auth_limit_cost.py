"""What authentication + rate limiting cost per request, with the limits in Redis.

Measures, sequentially (c=1) and in-process, the median and p90 of:
- `authenticate`: API key -> Principal (one indexed SELECT; `last_used_at` is throttled),
- `limit`: `RateLimitService.check_principal` (minute + day windows) on Redis and in memory,
- HTTP: `GET /v1/auth/me` with an API key (limits on, then off) vs `GET /health` through the
  whole ASGI app: what auth + limit (+ the tiny /me body) add to a request, and the limit alone.

    uv run python -m bench.auth_limit_cost [--requests 2000] [--redis-url URL] [--database-url URL]

The Redis keys live under a unique prefix and are deleted afterwards. The database defaults
to a temporary SQLite file; pass a PostgreSQL URL (an empty database) to measure that.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from agent_api.api.app import create_app
from agent_api.application.rate_limits import RateLimitService
from agent_api.bootstrap import Container
from agent_api.config import Settings
from agent_api.infrastructure.logging import configure_logging
from agent_api.infrastructure.rate_limiter import LimitsRateLimiter

# Realistic limits that the benchmark never reaches: the moving window keeps one entry per
# request in the last minute, so its cost depends on the per-minute limit (capped at 10 000
# per key); the daily sliding-window counter costs the same whatever its limit.
PER_MINUTE = 10_000
PER_DAY = 10**9


Samples = tuple[list[float], float]  # wall-clock seconds per call, CPU seconds per call


def summary(result: Samples) -> str:
    samples, cpu = result
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9)]
    median = statistics.median(ordered)
    return f"median {median * 1e3:7.3f} ms   p90 {p90 * 1e3:7.3f} ms   cpu {cpu * 1e3:7.3f} ms"


async def timed(n: int, action: Callable[[], Awaitable[Any]]) -> Samples:
    for _ in range(min(200, n)):  # warm-up: connections, caches, scripts loaded
        await action()
    samples = []
    cpu_start = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - start)
    return samples, (time.process_time() - cpu_start) / n


async def main(requests: int, redis_url: str, database_url: str) -> None:
    prefix = f"bench-rl-{uuid.uuid4().hex}"
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        jwt_secret="bench-" + "x" * 40,
        redis_url=redis_url,
        rate_limit_per_minute=PER_MINUTE,
        rate_limit_per_day=PER_DAY,
        log_level="warning",
    )
    limiter = LimitsRateLimiter.on_redis(redis_url, key_prefix=prefix)
    app = create_app(settings, rate_limiter=limiter)
    try:
        # The lifespan driven directly (not through a test harness) so that every request
        # gets a fresh scope state, as under uvicorn.
        async with app.router.lifespan_context(app):
            container: Container = app.state.container
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                body = {"email": "bench@example.com", "password": "bench password", "name": "B"}
                await client.post("/v1/auth/register", json=body)
                login = await client.post("/v1/auth/login", json=body)
                session = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
                # One key per measurement, so that no window holds more than one run's hits.
                keys = []
                for name in ("direct", "http"):
                    created = await client.post(
                        "/v1/api-keys", json={"name": name}, headers=session
                    )
                    keys.append(created.json()["data"]["key"])
                key, http_key = keys
                principal = await container.auth.authenticate(key)
                memory = RateLimitService(
                    LimitsRateLimiter.in_memory(),
                    enabled=True,
                    per_minute=PER_MINUTE,
                    per_day=PER_DAY,
                    auth_per_minute=10,
                )
                with_key = {"Authorization": f"Bearer {http_key}"}
                results = {
                    "authenticate (API key)": await timed(
                        requests, lambda: container.auth.authenticate(key)
                    ),
                    "limit, Redis": await timed(
                        requests, lambda: container.rate_limits.check_principal(principal)
                    ),
                    "limit, memory": await timed(
                        requests, lambda: memory.check_principal(principal)
                    ),
                    "GET /health": await timed(requests, lambda: client.get("/health")),
                    "GET /v1/auth/me (key)": await timed(
                        requests, lambda: client.get("/v1/auth/me", headers=with_key)
                    ),
                }
                container.rate_limits.enabled = False
                results["GET /v1/auth/me, no limits"] = await timed(
                    requests, lambda: client.get("/v1/auth/me", headers=with_key)
                )
    finally:
        await limiter.aclose()  # ours: the app leaves what it is given open
        redis = Redis.from_url(redis_url)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    print(f"{requests} sequential samples each (cpu = process CPU per call, all threads);")
    print(f"database {database_url.split(':')[0]}, Redis {redis_url}")
    for name, samples in results.items():
        print(f"  {name:26} {summary(samples)}")

    def median(name: str) -> float:
        return statistics.median(results[name][0]) * 1e3

    me, unlimited, health = (
        median("GET /v1/auth/me (key)"),
        median("GET /v1/auth/me, no limits"),
        median("GET /health"),
    )
    print(f"  per request, medians: auth + limit + /me = {me - health:.3f} ms over /health,")
    print(f"  of which the Redis limit = {me - unlimited:.3f} ms")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--database-url")
    args = parser.parse_args()
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(main(args.requests, args.redis_url, database_url))


if __name__ == "__main__":
    cli()
