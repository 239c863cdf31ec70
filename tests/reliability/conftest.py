"""Fixtures for the reliability suite: one real server process on PostgreSQL and Redis (the
production topology, where row locks and Lua scripts are what is under test), talking to the
stub LLM over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import live_server
from tests.e2e.conftest import server_env
from tests.stub_llm import StubLLM

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture(scope="module")
def server(server_pg_url: str, redis_url: str, stub: StubLLM) -> Iterator[str]:
    """`agent-api serve` on PostgreSQL + Redis; the calculator needs approval. Sessions get a
    high default rate limit, so a race of hundreds of requests with one access token is about
    the race (API keys created with their own limit are still held to it)."""
    env = server_env(
        server_pg_url,
        redis_url,
        stub,
        DB_AUTO_MIGRATE="false",
        TOOLS_REQUIRING_APPROVAL="calculator",
        RATE_LIMIT_PER_MINUTE="100000",
        # Races of many runs of one session are about the conversation's own claim; the cap on
        # concurrent runs (tested in tests/api/test_run_caps.py) would answer them first.
        MAX_CONCURRENT_RUNS_PER_KEY="1000",
        MAX_CONCURRENT_RUNS_PER_USER="1000",
    )
    with live_server(env) as url:
        yield url


def new_account(base_url: str) -> dict[str, Any]:
    """Registers a fresh user and logs in; returns the login payload (tokens and user)."""
    email = f"rel-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Reliability"}
    assert httpx.post(f"{base_url}/v1/auth/register", json=body).status_code == 201
    response = httpx.post(f"{base_url}/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
