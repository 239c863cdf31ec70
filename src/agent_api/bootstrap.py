"""The composition root: builds every adapter and service from Settings, by hand.

`build(settings, *, engine=..., hasher=..., ...)` is an async context manager. Each keyword
replaces one adapter (tests pass fakes, e.g. `build(settings, hasher=FastHasher())`); an
unknown keyword is a TypeError. What `build` opens itself (engine, Redis, clients) is closed
on exit, in reverse order; what a caller passes in stays the caller's to close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, TypedDict, TypeVar

import anyio
import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_api.application.api_keys import ApiKeyService
from agent_api.application.auth import AuthService
from agent_api.application.conversation_queries import ConversationReader
from agent_api.application.conversations import ConversationService
from agent_api.application.models import ModelCatalog
from agent_api.application.ports import ChatModel
from agent_api.application.ports_auth import PasswordHasher
from agent_api.application.ports_limits import RateLimiter, RunSlots
from agent_api.application.ports_usage import UsageRepository
from agent_api.application.rate_limits import RateLimitService
from agent_api.application.usage import UsageService
from agent_api.config import Settings
from agent_api.domain.clock import Clock, utcnow
from agent_api.domain.errors import ServiceUnavailable
from agent_api.infrastructure.brave import BraveWebSearch
from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.usage import SqlUsageRepository
from agent_api.infrastructure.llm import DemoChatModel, OpenAICompatibleChatModel
from agent_api.infrastructure.metrics import Metrics
from agent_api.infrastructure.rate_limiter import LimitsRateLimiter
from agent_api.infrastructure.run_slots import MemoryRunSlots, RedisRunSlots
from agent_api.infrastructure.tokenizers import load_tables_for
from agent_api.services import (
    api_key_service,
    auth_service,
    conversation_reader,
    conversation_service,
    rate_limit_service,
    tool_executor,
)
from agent_api.tools.base import Tool
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
    # The models each credential may use, and the default one.
    models: ModelCatalog
    # Runs, checks and records every tool call; `tools.registry` lists the tools.
    tools: ToolExecutor
    conversations: ConversationService
    conversation_reader: ConversationReader


class _Closeable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closeable)


def _owned(stack: AsyncExitStack, resource: _C) -> _C:
    """`resource`, closed when `stack` unwinds: for what `build` opens itself."""
    stack.push_async_callback(resource.aclose)
    return resource


def _default_chat_model(stack: AsyncExitStack, settings: Settings) -> ChatModel:
    if settings.effective_llm_provider == "openai" and settings.llm_base_url:
        return _owned(
            stack,
            OpenAICompatibleChatModel(
                settings.llm_base_url,
                api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
                timeout=settings.llm_timeout.total_seconds(),
                max_retries=settings.llm_max_retries,
            ),
        )
    log.warning("LLM_BASE_URL is not set: answering with the offline demo model")
    return DemoChatModel()


# --- adapters: the caller's when passed in, else built here and closed on exit --------------


def _database(stack: AsyncExitStack, settings: Settings, engine: AsyncEngine | None) -> Database:
    if engine is not None:
        return Database(engine)
    db = Database(
        create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout.total_seconds(),
        )
    )
    stack.push_async_callback(db.dispose)
    return db


def _default_redis(stack: AsyncExitStack, settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    return _owned(
        stack,
        Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=10
        ),
    )


def _default_run_slots(stack: AsyncExitStack, settings: Settings) -> RunSlots:
    # Replicas share the run slots through Redis; embedded mode keeps them in process.
    if not settings.redis_url:
        return MemoryRunSlots()
    prefix = settings.rate_limit_key_prefix
    return _owned(stack, RedisRunSlots.on_redis(settings.redis_url, key_prefix=prefix))


def _default_rate_limiter(stack: AsyncExitStack, settings: Settings) -> RateLimiter:
    if not settings.redis_url:
        return _owned(stack, LimitsRateLimiter.in_memory())
    prefix = settings.rate_limit_key_prefix
    return _owned(stack, LimitsRateLimiter.on_redis(settings.redis_url, key_prefix=prefix))


def _default_web_search(stack: AsyncExitStack, settings: Settings) -> WebSearch | None:
    # `web_search` is offered only when there is a search backend.
    if settings.web_search_api_key is None:
        return None
    key = settings.web_search_api_key.get_secret_value()
    return _owned(stack, BraveWebSearch(key, settings.web_search_base_url))


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


def _start_sweeper(
    stack: AsyncExitStack, conversations: ConversationService, settings: Settings
) -> None:
    interval = settings.agent_run_lease.total_seconds() / 2
    sweeper = asyncio.create_task(_sweep_interrupted_runs(conversations, interval))

    async def stop() -> None:
        # Wait for the cancelled sweep to unwind before the engine closes under it.
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)

    stack.push_async_callback(stop)


class Adapters(TypedDict, total=False):
    """The keywords of `build`, for callers that pass them through (`create_app`)."""

    engine: AsyncEngine
    redis: Redis
    metrics: Metrics
    run_slots: RunSlots
    rate_limiter: RateLimiter
    chat_model: ChatModel
    web_search: WebSearch
    hasher: PasswordHasher
    clock: Clock
    extra_tools: Iterable[Tool]


# Long by its typed keyword list (one per adapter a test may swap) and the container it
# fills; the body reads top-down in the order the resources are opened.
@asynccontextmanager
async def build(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    redis: Redis | None = None,
    metrics: Metrics | None = None,
    run_slots: RunSlots | None = None,
    rate_limiter: RateLimiter | None = None,
    chat_model: ChatModel | None = None,
    web_search: WebSearch | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock = utcnow,
    extra_tools: Iterable[Tool] = (),
) -> AsyncIterator[Container]:
    """The container for `settings`, with the adapters passed in (each built from the
    settings when omitted). Everything built here is closed on exit, in reverse order."""
    async with AsyncExitStack() as stack:
        db = _database(stack, settings, engine)
        redis = redis if redis is not None else _default_redis(stack, settings)
        metrics = metrics if metrics is not None else Metrics()
        run_slots = run_slots if run_slots is not None else _default_run_slots(stack, settings)
        if rate_limiter is None:
            rate_limiter = _default_rate_limiter(stack, settings)
        if chat_model is None:
            chat_model = _default_chat_model(stack, settings)
        if web_search is None:
            web_search = _default_web_search(stack, settings)
        if settings.db_auto_migrate:
            await migrations.upgrade(db.engine)
        # The offered models' tokenizer tables load at start, not in the first request's time.
        await anyio.to_thread.run_sync(load_tables_for, settings.offered_models)
        usage_records = SqlUsageRepository(db)
        models = ModelCatalog(settings.offered_models, settings.llm_default_model)
        tools = tool_executor(settings, db, metrics, clock, web_search, extra_tools)
        conversations = conversation_service(
            settings, db, chat_model, metrics, tools, models, run_slots, clock
        )
        _start_sweeper(stack, conversations, settings)
        yield Container(
            settings=settings,
            db=db,
            redis=redis,
            metrics=metrics,
            auth=auth_service(settings, db, hasher, clock),
            api_keys=api_key_service(settings, db, clock),
            rate_limits=rate_limit_service(settings, rate_limiter, metrics),
            usage=UsageService(usage_records, clock),
            usage_records=usage_records,
            chat_model=chat_model,
            models=models,
            tools=tools,
            conversations=conversations,
            conversation_reader=conversation_reader(db, clock),
        )
