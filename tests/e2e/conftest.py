"""End-to-end fixtures: a real server process on PostgreSQL and Redis, talking to the stub LLM
over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import live_server
from tests.stub_llm import StubLLM


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


def server_env(pg_url: str, redis_url: str, stub: StubLLM, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "LLM_BASE_URL": stub.url,
        "LLM_DEFAULT_MODEL": "gpt-4o-mini",
        "LLM_MODELS": "gpt-4o-mini,gpt-4o",
        "LLM_MAX_RETRIES": "0",
        **extra,
    }


@pytest.fixture(scope="module")
def server(server_pg_url: str, redis_url: str, stub: StubLLM) -> Iterator[str]:
    with live_server(server_env(server_pg_url, redis_url, stub, DB_AUTO_MIGRATE="false")) as url:
        yield url


def login(base_url: str, email: str) -> str:
    """Registers (if needed) and logs in; returns an access token."""
    password = "correct horse battery"
    httpx.post(
        f"{base_url}/v1/auth/register", json={"email": email, "password": password, "name": "E2E"}
    )
    response = httpx.post(f"{base_url}/v1/auth/login", json={"email": email, "password": password})
    response.raise_for_status()
    token: str = response.json()["data"]["access_token"]
    return token


def create_key(base_url: str, token: str, **fields: Any) -> str:
    response = httpx.post(
        f"{base_url}/v1/api-keys",
        json={"name": "e2e", **fields},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    key: str = response.json()["data"]["key"]
    return key
