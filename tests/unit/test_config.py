"""Settings: strict parsing from the environment; bad values are errors naming the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent_api.config import KNOWN_DEFAULT_SECRETS, Settings
from agent_api.config_types import parse_duration

PG_URL = "postgresql+asyncpg://agent:pw@db.internal/agent"
STRONG_SECRET = "a-long-random-secret-of-more-than-32-bytes"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment holding none of our variables, in a directory without a .env file."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def load(env: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name, value in variables.items():
        env.setenv(name, value)
    return Settings()


def error_fields(exc: ValidationError) -> list[str]:
    return [".".join(map(str, err["loc"])) for err in exc.errors()]


# --- defaults and the .env file ----------------------------------------------------------------


def test_embedded_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load(env)
    assert settings.database_url.startswith("sqlite+aiosqlite:")
    assert not settings.uses_postgres
    assert (settings.server_host, settings.server_port) == ("127.0.0.1", 8080)
    assert settings.jwt_secret is None  # generated per process, embedded mode only
    assert settings.jwt_access_ttl == timedelta(minutes=15)
    assert settings.jwt_refresh_ttl == timedelta(days=7)
    assert settings.max_body_bytes == 20 * 1024 * 1024
    assert settings.redis_url is None
    assert settings.effective_llm_provider == "demo"
    assert settings.offered_models == ["demo"]


def test_dotenv_file_is_read_and_the_environment_wins(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SERVER_PORT=9000\nLOG_FORMAT=console\n")
    settings = load(env, LOG_FORMAT="json")
    assert settings.server_port == 9000
    assert settings.log_format == "json"


def test_settings_are_frozen(env: pytest.MonkeyPatch) -> None:
    settings = load(env)
    with pytest.raises(ValidationError):
        settings.server_port = 1  # type: ignore[misc]


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15m", timedelta(minutes=15)),
        ("168h", timedelta(hours=168)),
        ("7d", timedelta(days=7)),
        ("30s", timedelta(seconds=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("900", timedelta(seconds=900)),
        (" 15 m ", timedelta(minutes=15)),
    ],
)
def test_durations(env: pytest.MonkeyPatch, raw: str, expected: timedelta) -> None:
    assert parse_duration(raw) == expected
    assert load(env, JWT_ACCESS_TTL=raw).jwt_access_ttl == expected


@pytest.mark.parametrize(
    "raw",
    ["banana", "", "0", "0s", "-5m", "15 minutes", "1e3s", "7w", "nan", "99999999999999d"],
)
@pytest.mark.parametrize(
    "variable", ["JWT_ACCESS_TTL", "JWT_REFRESH_TTL", "DB_POOL_TIMEOUT", "LLM_TIMEOUT"]
)
def test_bad_durations_are_errors_naming_the_variable(
    env: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        load(env, **{variable: raw})
    assert error_fields(exc.value) == [variable.lower()]
    assert "invalid duration" in str(exc.value)


def test_duration_values_passed_in_code() -> None:
    assert parse_duration(timedelta(seconds=3)) == timedelta(seconds=3)
    assert parse_duration(2) == timedelta(seconds=2)
    assert parse_duration(0.5) == timedelta(milliseconds=500)
    bad_values: list[object] = [True, None, [], timedelta(0), -1, float("inf")]
    for bad in bad_values:
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)


# --- JWT_SECRET --------------------------------------------------------------------------------


def test_postgres_requires_a_jwt_secret(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET is required"):
        load(env, DATABASE_URL=PG_URL)


def test_postgres_refuses_a_short_jwt_secret(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET must be at least 32 bytes") as exc:
        load(env, DATABASE_URL=PG_URL, JWT_SECRET="too-short-secret")
    assert "too-short-secret" not in exc.value.errors()[0]["msg"]  # the value is never echoed


def test_the_secret_length_is_counted_in_bytes(env: pytest.MonkeyPatch) -> None:
    # 11 three-byte characters: 33 bytes, 11 characters.
    assert load(env, DATABASE_URL=PG_URL, JWT_SECRET="€" * 11).jwt_secret is not None
    with pytest.raises(ValidationError):
        load(env, DATABASE_URL=PG_URL, JWT_SECRET="x" * 31)


@pytest.mark.parametrize("secret", sorted(KNOWN_DEFAULT_SECRETS))
def test_postgres_refuses_published_default_secrets(env: pytest.MonkeyPatch, secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        load(env, DATABASE_URL=PG_URL, JWT_SECRET=secret)
    # Case does not disguise a known default.
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        load(env, DATABASE_URL=PG_URL, JWT_SECRET=secret.upper())


def test_postgres_with_a_strong_secret(env: pytest.MonkeyPatch) -> None:
    settings = load(env, DATABASE_URL=PG_URL, JWT_SECRET=STRONG_SECRET)
    assert settings.uses_postgres
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == STRONG_SECRET
    assert STRONG_SECRET not in repr(settings)


def test_sqlite_accepts_a_missing_secret(env: pytest.MonkeyPatch) -> None:
    assert load(env).jwt_secret is None


# --- other fields ------------------------------------------------------------------------------


def test_comma_separated_lists(env: pytest.MonkeyPatch) -> None:
    settings = load(
        env,
        LLM_MODELS=" gpt-4o, gpt-4o-mini,, ",
        TOOLS_REQUIRING_APPROVAL="web_search",
        CORS_ORIGINS="",
    )
    assert settings.llm_models == ["gpt-4o", "gpt-4o-mini"]
    assert settings.tools_requiring_approval == ["web_search"]
    assert settings.cors_origins == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERVER_PORT", "0"),
        ("SERVER_PORT", "65536"),
        ("SERVER_PORT", "eighty"),
        ("MAX_BODY_BYTES", "10"),
        ("DB_POOL_SIZE", "0"),
        ("DB_AUTO_MIGRATE", "maybe"),
        ("RATE_LIMIT_PER_MINUTE", "0"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
        ("LLM_PROVIDER", "anthropic"),
        ("LLM_MAX_RETRIES", "-1"),
        ("AGENT_MAX_ITERATIONS", "0"),
    ],
)
def test_bad_values_are_errors_naming_the_variable(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        load(env, **{variable: value})
    assert error_fields(exc.value) == [variable.lower()]


def test_unknown_variables_are_ignored(env: pytest.MonkeyPatch) -> None:
    assert load(env, SOME_OTHER_TOOL_SETTING="x").server_port == 8080


def test_llm_provider_openai_needs_a_base_url(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="LLM_BASE_URL"):
        load(env, LLM_PROVIDER="openai")


def test_a_base_url_selects_the_openai_provider(env: pytest.MonkeyPatch) -> None:
    settings = load(env, LLM_BASE_URL="http://litellm:4000")
    assert settings.effective_llm_provider == "openai"
    assert settings.offered_models == ["gpt-4o-mini"]


def test_offered_models_always_include_the_default_first(env: pytest.MonkeyPatch) -> None:
    settings = load(
        env,
        LLM_BASE_URL="http://litellm:4000",
        LLM_DEFAULT_MODEL="gpt-4o",
        LLM_MODELS="claude,llama",
    )
    assert settings.offered_models == ["gpt-4o", "claude", "llama"]
    # A default already in the list keeps its place.
    assert load(env, LLM_MODELS="llama,gpt-4o").offered_models == ["llama", "gpt-4o"]


def test_demo_provider_forced_even_with_a_base_url(env: pytest.MonkeyPatch) -> None:
    settings = load(env, LLM_BASE_URL="http://litellm:4000", LLM_PROVIDER="demo")
    assert settings.effective_llm_provider == "demo"
    assert settings.offered_models == ["demo"]


def test_a_given_weak_secret_is_refused_even_on_sqlite() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(_env_file=None, jwt_secret="secret")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="published default"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            jwt_secret="your-super-secret-jwt-key-change-in-production",
        )


def test_empty_values_mean_unset() -> None:
    settings = Settings(_env_file=None, jwt_secret="", redis_url=" ", llm_api_key="")  # type: ignore[call-arg]
    assert settings.jwt_secret is None
    assert settings.redis_url is None
    assert settings.llm_api_key is None


# --- context budgets -----------------------------------------------------------------------------


def test_context_budgets_default_and_per_model(env: pytest.MonkeyPatch) -> None:
    settings = load(env, LLM_CONTEXT_TOKENS_BY_MODEL=" gpt-4o=128000, llama3:8b=8192 ,")
    assert settings.llm_context_tokens_by_model == {"gpt-4o": 128000, "llama3:8b": 8192}
    assert settings.context_tokens_for("llama3:8b") == 8192
    assert settings.context_tokens_for("anything-else") == 128_000
    assert settings.llm_context_reserve_tokens == 4096


@pytest.mark.parametrize(
    "value",
    ["llama3", "llama3=", "=8192", "llama3=0", "llama3=-5", "llama3=8k", "a b=10", "x=1,x=2"],
)
def test_bad_per_model_budgets_name_the_variable(env: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        load(env, LLM_CONTEXT_TOKENS_BY_MODEL=value)
    assert error_fields(exc.value) == ["llm_context_tokens_by_model"]


@pytest.mark.parametrize(
    ("variable", "value"), [("LLM_CONTEXT_TOKENS", "0"), ("LLM_CONTEXT_RESERVE_TOKENS", "-1")]
)
def test_bad_context_numbers_name_the_variable(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        load(env, **{variable: value})
    assert error_fields(exc.value) == [variable.lower()]


def test_the_answer_reserve_must_leave_room_for_the_prompt(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="LLM_CONTEXT_TOKENS_BY_MODEL \\(tiny\\)"):
        load(env, LLM_CONTEXT_TOKENS_BY_MODEL="tiny=4096")
    with pytest.raises(ValidationError, match="LLM_CONTEXT_TOKENS must be more"):
        load(env, LLM_CONTEXT_TOKENS="1000", LLM_CONTEXT_RESERVE_TOKENS="1000")


def test_key_limit_maximums_default_to_the_server_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load(env, RATE_LIMIT_PER_MINUTE="30", RATE_LIMIT_MAX_PER_DAY="")
    assert settings.key_rate_limit_max_per_minute == 30
    assert settings.key_rate_limit_max_per_day == settings.rate_limit_per_day
    raised = load(env, RATE_LIMIT_MAX_PER_MINUTE="100")
    assert raised.key_rate_limit_max_per_minute == 100


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        ({"RATE_LIMIT_PER_MINUTE": "60", "RATE_LIMIT_MAX_PER_MINUTE": "59"}, "MINUTE"),
        ({"RATE_LIMIT_PER_DAY": "1000", "RATE_LIMIT_MAX_PER_DAY": "999"}, "DAY"),
    ],
)
def test_a_key_maximum_below_the_default_stops_startup(
    env: pytest.MonkeyPatch, variables: dict[str, str], name: str
) -> None:
    with pytest.raises(ValidationError, match=f"RATE_LIMIT_MAX_PER_{name}"):
        load(env, **variables)


def test_user_budget_defaults_to_three_credentials(env: pytest.MonkeyPatch) -> None:
    settings = load(env, RATE_LIMIT_PER_MINUTE="10", USER_RATE_LIMIT_PER_DAY="")
    assert settings.user_limit_per_minute == 30
    assert settings.user_limit_per_day == 3 * settings.rate_limit_per_day
    assert load(env, USER_RATE_LIMIT_PER_MINUTE="7").user_limit_per_minute == 7
