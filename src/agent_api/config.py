"""Settings read from the environment (and `.env` when present).

Every variable of the configuration table in the README is a field here, named after the
variable in lower case. Nothing is read at import time: build `Settings()` where it is needed
(the CLI and `create_app`). Bad values stop startup with a message naming the variable; nothing
is silently defaulted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agent_api.config_types import CsvList, Duration, Lowercase, ModelBudgets

# Secrets that appear in public examples (the Go original's default among them).
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "change-me-in-production-please",
        "changeme",
        "secret",
        "your-secret-key",
        "your-super-secret-jwt-key-change-in-production",
    }
)
MIN_JWT_SECRET_BYTES = 32
_INT32_MAX = 2**31 - 1  # the limit columns are 32-bit integers
# The per-user budget defaults to this many times the per-credential one (see README).
USER_RATE_LIMIT_FACTOR = 3


class Settings(BaseSettings):
    """The whole configuration. Field groups follow the README's configuration table."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # server
    server_host: str = "127.0.0.1"
    server_port: int = Field(8080, ge=1, le=65535)
    shutdown_timeout: Duration = timedelta(seconds=30)
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024)  # 20 MiB, like OpenAI's images
    # Slow clients: complete request headers within this of connecting (or of the last
    # response), the whole body within this of the headers, and idle keep-alive connections
    # close after this (whole seconds).
    request_header_timeout: Duration = timedelta(seconds=10)
    request_body_timeout: Duration = timedelta(seconds=30)
    keepalive_timeout: Duration = timedelta(seconds=5)
    cors_origins: CsvList = []
    log_level: Annotated[Literal["debug", "info", "warning", "error"], Lowercase] = "info"
    log_format: Annotated[Literal["json", "console"], Lowercase] = "json"

    # database
    database_url: str = "sqlite+aiosqlite:///./agent_api.db"
    db_pool_size: int = Field(10, ge=1)
    db_pool_timeout: Duration = timedelta(seconds=5)
    db_auto_migrate: bool = True

    # cache and limits
    redis_url: str | None = None
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = Field(60, ge=1)
    rate_limit_per_day: int = Field(10_000, ge=1)
    auth_rate_limit_per_minute: int = Field(10, ge=1)
    # Login/register attempts per client IP and email together, and per email from any IP: the
    # second is high so that guesses from other addresses cannot lock the owner out.
    auth_rate_limit_per_ip_email_per_minute: int = Field(5, ge=1)
    auth_rate_limit_per_email_per_minute: int = Field(100, ge=1)
    # Failed authentications (bad bearer credentials) per client IP, checked before any lookup.
    auth_failure_limit_per_minute: int = Field(20, ge=1)
    # The most a key may ask for (unset: the server defaults above).
    rate_limit_max_per_minute: int | None = Field(None, ge=1, le=_INT32_MAX)
    rate_limit_max_per_day: int | None = Field(None, ge=1, le=_INT32_MAX)
    # Budget of a user across all its credentials (unset: 3x the per-credential defaults).
    user_rate_limit_per_minute: int | None = Field(None, ge=1)
    user_rate_limit_per_day: int | None = Field(None, ge=1)
    api_keys_max_per_user: int = Field(20, ge=1)
    # Agent runs (turns) at once, per credential and per user, across replicas.
    max_concurrent_runs_per_key: int = Field(4, ge=1)
    max_concurrent_runs_per_user: int = Field(8, ge=1)
    # Namespace of the limit counters in Redis, for a Redis shared with other applications.
    rate_limit_key_prefix: str = Field("agent-api:rl", min_length=1, max_length=100)

    # auth
    jwt_secret: SecretStr | None = None
    jwt_access_ttl: Duration = timedelta(minutes=15)
    jwt_refresh_ttl: Duration = timedelta(days=7)
    jwt_issuer: str = "agent-api"
    jwt_audience: str = "agent-api"
    # Absolute lifetime of a login session: refreshing never extends it past this.
    session_max_age: Duration = timedelta(days=30)
    # `open`: anyone may `POST /v1/auth/register`; `closed`: 403, accounts come from
    # `agent-api create-user`.
    registration: Annotated[Literal["open", "closed"], Lowercase] = "open"

    # LLM and agent
    llm_provider: Literal["openai", "demo"] | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_default_model: str = "gpt-4o-mini"
    llm_models: CsvList = []
    llm_timeout: Duration = timedelta(seconds=120)
    llm_max_retries: int = Field(2, ge=0, le=10)
    # Context window of every model, overridable per model; what a request may take is the
    # window minus the reserve kept for the answer.
    llm_context_tokens: int = Field(128_000, ge=1)
    llm_context_tokens_by_model: ModelBudgets = {}
    llm_context_reserve_tokens: int = Field(4_096, ge=0)
    agent_max_iterations: int = Field(10, ge=1, le=100)
    # Tool calls run (or sent for approval) from one model answer; the extra ones are answered
    # "not run" so that a model cannot fan out without bound.
    agent_max_tool_calls_per_step: int = Field(32, ge=1)
    # How long a run's claim on its conversation holds without renewal (renewed every third
    # of it while the run lives): after a crash the conversation is free again this soon.
    agent_run_lease: Duration = timedelta(seconds=60)

    # tools
    tools_max_concurrent: int = Field(10, ge=1, le=256)
    tool_timeout: Duration = timedelta(seconds=30)
    tools_requiring_approval: CsvList = []
    web_search_api_key: SecretStr | None = None
    web_search_base_url: str = "https://api.search.brave.com/res/v1/web/search"

    @field_validator(
        "jwt_secret",
        "llm_api_key",
        "web_search_api_key",
        "redis_url",
        "rate_limit_max_per_minute",
        "rate_limit_max_per_day",
        "user_rate_limit_per_minute",
        "user_rate_limit_per_day",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`VAR=` (as in a copied .env.example) means unset (the documented default), not an
        empty secret or URL nor an invalid number."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if self.uses_postgres and not secret:
            raise ValueError("JWT_SECRET is required when DATABASE_URL points at PostgreSQL")
        # A secret that is given is checked whatever the database: a weak one is never used.
        if secret:
            if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
                raise ValueError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long")
            if secret.lower() in KNOWN_DEFAULT_SECRETS:
                raise ValueError("JWT_SECRET is a published default; generate your own")
        if self.llm_provider == "openai" and not self.llm_base_url:
            raise ValueError("LLM_PROVIDER=openai needs LLM_BASE_URL")
        budgets = {"LLM_CONTEXT_TOKENS": self.llm_context_tokens} | {
            f"LLM_CONTEXT_TOKENS_BY_MODEL ({model})": tokens
            for model, tokens in self.llm_context_tokens_by_model.items()
        }
        for name, tokens in budgets.items():
            if tokens <= self.llm_context_reserve_tokens:
                raise ValueError(
                    f"{name} must be more than LLM_CONTEXT_RESERVE_TOKENS "
                    f"({self.llm_context_reserve_tokens}): nothing would be left for the prompt"
                )
        if self.key_rate_limit_max_per_minute < self.rate_limit_per_minute:
            raise ValueError("RATE_LIMIT_MAX_PER_MINUTE must be at least RATE_LIMIT_PER_MINUTE")
        if self.key_rate_limit_max_per_day < self.rate_limit_per_day:
            raise ValueError("RATE_LIMIT_MAX_PER_DAY must be at least RATE_LIMIT_PER_DAY")
        return self

    def context_tokens_for(self, model: str) -> int:
        """The context window of `model`: its LLM_CONTEXT_TOKENS_BY_MODEL entry, else
        LLM_CONTEXT_TOKENS."""
        return self.llm_context_tokens_by_model.get(model, self.llm_context_tokens)

    @property
    def key_rate_limit_max_per_minute(self) -> int:
        """RATE_LIMIT_MAX_PER_MINUTE, else RATE_LIMIT_PER_MINUTE."""
        return self.rate_limit_max_per_minute or self.rate_limit_per_minute

    @property
    def key_rate_limit_max_per_day(self) -> int:
        """RATE_LIMIT_MAX_PER_DAY, else RATE_LIMIT_PER_DAY."""
        return self.rate_limit_max_per_day or self.rate_limit_per_day

    @property
    def user_limit_per_minute(self) -> int:
        """USER_RATE_LIMIT_PER_MINUTE, else USER_RATE_LIMIT_FACTOR x RATE_LIMIT_PER_MINUTE."""
        return (
            self.user_rate_limit_per_minute or USER_RATE_LIMIT_FACTOR * self.rate_limit_per_minute
        )

    @property
    def user_limit_per_day(self) -> int:
        """USER_RATE_LIMIT_PER_DAY, else USER_RATE_LIMIT_FACTOR x RATE_LIMIT_PER_DAY."""
        return self.user_rate_limit_per_day or USER_RATE_LIMIT_FACTOR * self.rate_limit_per_day

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def effective_llm_provider(self) -> Literal["openai", "demo"]:
        """`openai` when an endpoint is configured, otherwise the offline `demo` model."""
        if self.llm_provider:
            return self.llm_provider
        return "openai" if self.llm_base_url else "demo"

    @property
    def offered_models(self) -> list[str]:
        """Models offered by `/v1/models`: LLM_MODELS, else the default (`demo` when offline)."""
        if self.effective_llm_provider == "demo":
            return ["demo"]
        models = list(self.llm_models) or [self.llm_default_model]
        if self.llm_default_model not in models:
            models.insert(0, self.llm_default_model)
        return models


class ExplicitSettings(Settings):
    """Settings from their defaults and the keyword values given, nothing else: neither the
    environment nor a .env file is read (for reproducible exports and tests)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
