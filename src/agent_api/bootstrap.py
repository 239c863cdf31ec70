"""The composition root: builds every adapter and service from Settings, by hand.

`build(settings, **overrides)` is an async context manager that owns every resource it opens
(engine, Redis) and closes them on exit. Tests swap an adapter by keyword, e.g.
`build(settings, hasher=FastHasher())`; an unknown keyword is a TypeError.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis

from agent_api.application.auth import AuthService
from agent_api.application.tokens import TokenService
from agent_api.config import Settings
from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.api_keys import SqlApiKeyRepository
from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.sessions import SqlSessionRepository
from agent_api.infrastructure.db.users import SqlUserRepository
from agent_api.infrastructure.metrics import Metrics
from agent_api.infrastructure.passwords import Argon2PasswordHasher

log = structlog.get_logger("agent_api.bootstrap")


@dataclass(frozen=True)
class Container:
    """Everything the API layer needs, built once per process."""

    settings: Settings
    db: Database
    redis: Redis | None
    metrics: Metrics
    auth: AuthService


def _jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    # Config validation refuses this with PostgreSQL; in embedded mode a per-process secret
    # is safe but logs everyone out on restart.
    log.warning(
        "JWT_SECRET is not set: using a random per-process secret (sessions end on restart)"
    )
    return secrets.token_urlsafe(48)


@asynccontextmanager
async def build(settings: Settings, **overrides: Any) -> AsyncIterator[Container]:
    def pick(name: str, default: Any) -> Any:
        return overrides.pop(name) if name in overrides else default

    engine = pick("engine", None) or create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout.total_seconds(),
    )
    db = Database(engine)
    redis = pick("redis", None)
    if redis is None and settings.redis_url:
        redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=10
        )
    metrics = pick("metrics", None) or Metrics()
    try:
        if settings.db_auto_migrate:
            await migrations.upgrade(engine)
        tokens = TokenService(
            _jwt_secret(settings),
            access_ttl=settings.jwt_access_ttl,
            refresh_ttl=settings.jwt_refresh_ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        auth = AuthService(
            users=SqlUserRepository(db),
            sessions=SqlSessionRepository(db),
            api_keys=SqlApiKeyRepository(db),
            hasher=pick("hasher", None) or Argon2PasswordHasher(),
            tokens=tokens,
            **({"clock": overrides.pop("clock")} if "clock" in overrides else {}),
        )
        if overrides:
            raise TypeError(f"unknown overrides: {', '.join(sorted(overrides))}")
        yield Container(settings=settings, db=db, redis=redis, metrics=metrics, auth=auth)
    finally:
        if redis is not None:
            await redis.aclose()
        await db.dispose()
