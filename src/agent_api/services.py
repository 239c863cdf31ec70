"""The services of the composition root, one builder per area: each reads its part of the
Settings and takes the adapters `bootstrap.build` chose."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable

import structlog

from agent_api.application.agent.context import ContextWindow
from agent_api.application.agent.graph import build_agent_graph
from agent_api.application.api_keys import ApiKeyService, KeyPolicy
from agent_api.application.auth import AuthService
from agent_api.application.conversation_queries import ConversationReader
from agent_api.application.conversations import ConversationService
from agent_api.application.models import ModelCatalog
from agent_api.application.ports import ChatModel
from agent_api.application.ports_auth import PasswordHasher
from agent_api.application.ports_limits import RateLimiter, RunSlots
from agent_api.application.rate_limits import AuthLimits, RateLimitService
from agent_api.application.run_slots import RunSlotService
from agent_api.application.tokens import TokenService
from agent_api.config import Settings
from agent_api.domain.clock import Clock
from agent_api.infrastructure.db.api_keys import SqlApiKeyRepository
from agent_api.infrastructure.db.conversations import SqlConversationRepository
from agent_api.infrastructure.db.database import Database
from agent_api.infrastructure.db.sessions import SqlSessionRepository
from agent_api.infrastructure.db.tool_executions import SqlToolExecutionRepository
from agent_api.infrastructure.db.users import SqlUserRepository
from agent_api.infrastructure.metered_chat_model import MeteredChatModel
from agent_api.infrastructure.metrics import Metrics
from agent_api.infrastructure.passwords import Argon2PasswordHasher
from agent_api.infrastructure.tokenizers import counter_for_model
from agent_api.tools import build_registry
from agent_api.tools.base import Tool
from agent_api.tools.executor import ToolExecutor
from agent_api.tools.web_search import WebSearch

log = structlog.get_logger("agent_api.bootstrap")


def _jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    # Config validation refuses this with PostgreSQL; in embedded mode a per-process secret
    # is safe but logs everyone out on restart.
    log.warning(
        "JWT_SECRET is not set: using a random per-process secret (sessions end on restart)"
    )
    return secrets.token_urlsafe(48)


def _context_windows(settings: Settings) -> Callable[[str], ContextWindow]:
    """Each model's context budget, counted with its own tokenizer when we ship it."""

    def window(model: str) -> ContextWindow:
        return ContextWindow(
            settings.context_tokens_for(model),
            settings.llm_context_reserve_tokens,
            counter_for_model(model),
        )

    return window


def auth_service(
    settings: Settings, db: Database, hasher: PasswordHasher | None, clock: Clock
) -> AuthService:
    tokens = TokenService(
        _jwt_secret(settings),
        access_ttl=settings.jwt_access_ttl,
        refresh_ttl=settings.jwt_refresh_ttl,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    return AuthService(
        users=SqlUserRepository(db),
        sessions=SqlSessionRepository(db),
        api_keys=SqlApiKeyRepository(db),
        hasher=hasher if hasher is not None else Argon2PasswordHasher(),
        tokens=tokens,
        clock=clock,
        session_max_age=settings.session_max_age,
        registration_open=settings.registration == "open",
    )


def api_key_service(settings: Settings, db: Database, clock: Clock) -> ApiKeyService:
    policy = KeyPolicy(
        max_rate_limit_per_minute=settings.key_rate_limit_max_per_minute,
        max_rate_limit_per_day=settings.key_rate_limit_max_per_day,
        max_keys_per_user=settings.api_keys_max_per_user,
    )
    return ApiKeyService(SqlApiKeyRepository(db), SqlUserRepository(db), clock=clock, policy=policy)


def rate_limit_service(
    settings: Settings, limiter: RateLimiter, metrics: Metrics
) -> RateLimitService:
    return RateLimitService(
        limiter,
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
        on_reject=metrics.count_rejection,
        on_fail_open=metrics.rate_limit_fail_open.inc,
    )


def tool_executor(
    settings: Settings,
    db: Database,
    metrics: Metrics,
    clock: Clock,
    web_search: WebSearch | None,
    extra_tools: Iterable[Tool],
) -> ToolExecutor:
    return ToolExecutor(
        build_registry(
            plugin_settings=settings,
            requiring_approval=settings.tools_requiring_approval,
            web_search=web_search,
            extra_tools=extra_tools,
        ),
        SqlToolExecutionRepository(db),
        timeout_seconds=settings.tool_timeout.total_seconds(),
        max_concurrent=settings.tools_max_concurrent,
        on_finished=lambda tool, status: metrics.tool_executions.labels(tool, status).inc(),
        clock=clock,
    )


def run_slot_service(settings: Settings, slots: RunSlots, metrics: Metrics) -> RunSlotService:
    return RunSlotService(
        slots,
        enabled=settings.rate_limit_enabled,
        per_credential=settings.max_concurrent_runs_per_key,
        per_user=settings.max_concurrent_runs_per_user,
        lease=settings.agent_run_lease,
        on_reject=metrics.count_rejection,
        on_fail_open=metrics.rate_limit_fail_open.inc,
    )


def conversation_reader(db: Database, clock: Clock) -> ConversationReader:
    """What the conversation routes read (and delete) outside a run."""
    return ConversationReader(SqlConversationRepository(db), clock)


def conversation_service(
    settings: Settings,
    db: Database,
    chat_model: ChatModel,
    metrics: Metrics,
    tools: ToolExecutor,
    models: ModelCatalog,
    run_slots: RunSlots,
    clock: Clock,
) -> ConversationService:
    """Conversations run by the agent graph; every LLM call is counted in `metrics`."""
    graph = build_agent_graph(
        MeteredChatModel(chat_model, metrics),
        tools,
        settings.agent_max_iterations,
        settings.tools_max_concurrent,
        context_window=_context_windows(settings),
        max_tool_calls_per_step=settings.agent_max_tool_calls_per_step,
    )
    return ConversationService(
        SqlConversationRepository(db),
        graph,
        tools.specs_for,
        models,
        clock=clock,
        max_iterations=settings.agent_max_iterations,
        lease=settings.agent_run_lease,
        run_slots=run_slot_service(settings, run_slots, metrics),
    )
