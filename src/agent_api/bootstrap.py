"""The composition root: builds every adapter and service from Settings, by hand.

`build(settings, **overrides)` is an async context manager that owns every resource it opens
(engine, Redis) and closes them on exit. Tests swap an adapter by keyword, e.g.
`build(settings, hasher=FastHasher())`; an unknown keyword is a TypeError.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis

from agent_api.application.agent.context import ContextWindow
from agent_api.application.agent.graph import build_agent_graph
from agent_api.application.api_keys import ApiKeyService, KeyPolicy
from agent_api.application.auth import AuthService, utcnow
from agent_api.application.conversations import ConversationService
from agent_api.application.models import ModelCatalog
from agent_api.application.ports import (
    ChatModel,
    RateLimiter,
    RunSlots,
    UsageRepository,
)
from agent_api.application.rate_limits import AuthLimits, RateLimitService
from agent_api.application.run_slots import RunSlotService
from agent_api.application.tokens import TokenService
from agent_api.application.usage import UsageService
from agent_api.config import Settings
from agent_api.domain.errors import ServiceUnavailable
from agent_api.infrastructure.brave import BraveWebSearch
from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.api_keys import SqlApiKeyRepository
from agent_api.infrastructure.db.conversations import SqlConversationRepository
from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.sessions import SqlSessionRepository
from agent_api.infrastructure.db.tool_executions import SqlToolExecutionRepository
from agent_api.infrastructure.db.usage import SqlUsageRepository
from agent_api.infrastructure.db.users import SqlUserRepository
from agent_api.infrastructure.llm import DemoChatModel, OpenAICompatibleChatModel
from agent_api.infrastructure.metered_chat_model import MeteredChatModel
from agent_api.infrastructure.metrics import Metrics
from agent_api.infrastructure.passwords import Argon2PasswordHasher
from agent_api.infrastructure.rate_limiter import LimitsRateLimiter
from agent_api.infrastructure.run_slots import MemoryRunSlots, RedisRunSlots
from agent_api.infrastructure.tokenizers import counter_for_model
from agent_api.tools import build_registry
from agent_api.tools.executor import ToolExecutor
from agent_api.tools.web_search import WebSearch

log = structlog.get_logger("agent_api.bootstrap")


@dataclass(frozen=True)
class Container:
    """Everything the API layer needs, built once per process."""

    settings: Settings
    db: Database
    redis: Redis | None
    metrics: Metrics
    auth: AuthService
    api_keys: ApiKeyService
    rate_limits: RateLimitService
    usage: UsageService
    # The agent records the tokens of every LLM call here.
    usage_records: UsageRepository
    chat_model: ChatModel
    # Runs, checks and records every tool call; `tools.registry` lists the tools.
    tools: ToolExecutor
    conversations: ConversationService


def _jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    # Config validation refuses this with PostgreSQL; in embedded mode a per-process secret
    # is safe but logs everyone out on restart.
    log.warning(
        "JWT_SECRET is not set: using a random per-process secret (sessions end on restart)"
    )
    return secrets.token_urlsafe(48)


def _chat_model(settings: Settings) -> OpenAICompatibleChatModel | DemoChatModel:
    if settings.effective_llm_provider == "openai" and settings.llm_base_url:
        return OpenAICompatibleChatModel(
            settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout=settings.llm_timeout.total_seconds(),
            max_retries=settings.llm_max_retries,
        )
    log.warning("LLM_BASE_URL is not set: answering with the offline demo model")
    return DemoChatModel()


def _context_windows(settings: Settings) -> Callable[[str], ContextWindow]:
    """Each model's context budget, counted with its own tokenizer when we ship it."""

    def window(model: str) -> ContextWindow:
        return ContextWindow(
            settings.context_tokens_for(model),
            settings.llm_context_reserve_tokens,
            counter_for_model(model),
        )

    return window


async def _sweep_interrupted_runs(conversations: ConversationService, interval: float) -> None:
    """Marks `failed` the runs whose process died (their lease ran out), at start and then
    every `interval` seconds. A database outage only postpones it: /ready reports the
    database meanwhile, and such conversations can be claimed again anyway."""
    while True:
        try:
            await conversations.fail_expired_runs()
        except ServiceUnavailable:
            log.warning("database unavailable: interrupted runs not swept this time")
        await asyncio.sleep(interval)


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
    # Replicas share the run slots through Redis; embedded mode keeps them in process.
    run_slots: RunSlots = pick("run_slots", None) or (
        RedisRunSlots.on_redis(settings.redis_url, key_prefix=settings.rate_limit_key_prefix)
        if settings.redis_url
        else MemoryRunSlots()
    )
    sweeper: asyncio.Task[None] | None = None
    # Tests pass their own (e.g. on Redis under a unique key prefix).
    rate_limiter: RateLimiter = pick("rate_limiter", None) or (
        LimitsRateLimiter.on_redis(settings.redis_url, key_prefix=settings.rate_limit_key_prefix)
        if settings.redis_url
        else LimitsRateLimiter.in_memory()
    )
    # A chat model passed in belongs to the caller; only the one built here is closed here.
    own_chat_model = None if "chat_model" in overrides else _chat_model(settings)
    chat_model: ChatModel = pick("chat_model", own_chat_model)
    # Likewise the search backend: `web_search` is offered only when there is one.
    own_web_search = None
    if "web_search" not in overrides and settings.web_search_api_key is not None:
        own_web_search = BraveWebSearch(
            settings.web_search_api_key.get_secret_value(), settings.web_search_base_url
        )
    web_search: WebSearch | None = pick("web_search", own_web_search)
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
        clock = {"clock": overrides.pop("clock")} if "clock" in overrides else {}
        users = SqlUserRepository(db)
        api_keys = SqlApiKeyRepository(db)
        auth = AuthService(
            users=users,
            sessions=SqlSessionRepository(db),
            api_keys=api_keys,
            hasher=pick("hasher", None) or Argon2PasswordHasher(),
            tokens=tokens,
            **clock,
            session_max_age=settings.session_max_age,
            registration_open=settings.registration == "open",
        )
        rate_limits = RateLimitService(
            rate_limiter,
            enabled=settings.rate_limit_enabled,
            per_minute=settings.rate_limit_per_minute,
            per_day=settings.rate_limit_per_day,
            auth_per_minute=settings.auth_rate_limit_per_minute,
            user_per_minute=settings.user_limit_per_minute,
            user_per_day=settings.user_limit_per_day,
            max_per_minute=settings.key_rate_limit_max_per_minute,
            max_per_day=settings.key_rate_limit_max_per_day,
            auth=AuthLimits(
                per_ip=settings.auth_rate_limit_per_minute,
                per_ip_email=settings.auth_rate_limit_per_ip_email_per_minute,
                per_email=settings.auth_rate_limit_per_email_per_minute,
                failures_per_ip=settings.auth_failure_limit_per_minute,
            ),
            on_reject=lambda scope: metrics.rate_limit_rejections.labels(scope=scope).inc(),
            on_fail_open=metrics.rate_limit_fail_open.inc,
        )
        usage_records = SqlUsageRepository(db)
        tools = ToolExecutor(
            build_registry(
                plugin_settings=settings,
                requiring_approval=settings.tools_requiring_approval,
                web_search=web_search,
                extra_tools=pick("extra_tools", ()),
            ),
            SqlToolExecutionRepository(db),
            timeout_seconds=settings.tool_timeout.total_seconds(),
            max_concurrent=settings.tools_max_concurrent,
            on_finished=lambda tool, status: metrics.tool_executions.labels(tool, status).inc(),
            **clock,
        )
        conversations = ConversationService(
            SqlConversationRepository(db),
            build_agent_graph(
                MeteredChatModel(chat_model, metrics),
                tools,
                settings.agent_max_iterations,
                settings.tools_max_concurrent,
                context_window=_context_windows(settings),
                max_tool_calls_per_step=settings.agent_max_tool_calls_per_step,
            ),
            tools,
            tools.specs_for,
            ModelCatalog(settings.offered_models, settings.llm_default_model),
            usage_records,
            clock=clock.get("clock", utcnow),
            max_iterations=settings.agent_max_iterations,
            lease=settings.agent_run_lease,
            run_slots=RunSlotService(
                run_slots,
                enabled=settings.rate_limit_enabled,
                per_credential=settings.max_concurrent_runs_per_key,
                per_user=settings.max_concurrent_runs_per_user,
                lease=settings.agent_run_lease,
                on_reject=lambda scope: metrics.rate_limit_rejections.labels(scope=scope).inc(),
                on_fail_open=metrics.rate_limit_fail_open.inc,
            ),
        )
        if overrides:
            raise TypeError(f"unknown overrides: {', '.join(sorted(overrides))}")
        sweeper = asyncio.create_task(
            _sweep_interrupted_runs(conversations, settings.agent_run_lease.total_seconds() / 2)
        )
        yield Container(
            settings=settings,
            db=db,
            redis=redis,
            metrics=metrics,
            auth=auth,
            api_keys=ApiKeyService(
                api_keys,
                users,
                **clock,
                policy=KeyPolicy(
                    max_rate_limit_per_minute=settings.key_rate_limit_max_per_minute,
                    max_rate_limit_per_day=settings.key_rate_limit_max_per_day,
                    max_keys_per_user=settings.api_keys_max_per_user,
                ),
            ),
            rate_limits=rate_limits,
            usage=UsageService(usage_records, **clock),
            usage_records=usage_records,
            chat_model=chat_model,
            tools=tools,
            conversations=conversations,
        )
    finally:
        if sweeper is not None:
            # Wait for the cancelled sweep to unwind before the engine closes under it.
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        if own_web_search is not None:
            await own_web_search.aclose()
        if isinstance(own_chat_model, OpenAICompatibleChatModel):
            await own_chat_model.aclose()
        await rate_limiter.aclose()
        if isinstance(run_slots, RedisRunSlots):
            await run_slots.aclose()
        if redis is not None:
            await redis.aclose()
        await db.dispose()
