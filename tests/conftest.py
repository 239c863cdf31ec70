"""Shared fixtures.

Folders are the test pyramid: `unit/` (no I/O), `integration/` (real PostgreSQL, Redis, HTTP),
`api/` (the whole app in-process on httpx's ASGI transport, with its lifespan), `e2e/` (a real
uvicorn process driven by real clients).

PostgreSQL and Redis come from TEST_DATABASE_URL / TEST_REDIS_URL. Each test session creates
its own PostgreSQL database (dropped at the end) and its own Redis key prefix, so concurrent
runs never see each other. When a server is unreachable its tests are skipped with a loud
summary line, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any, Unpack

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from agent_api.api.app import create_app
from agent_api.bootstrap import Adapters
from agent_api.config import Settings

ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_JWT_SECRET = "test-secret-" + "x" * 40
# Rate-limit counters of this test session in the shared Redis (never flushed by tests).
TEST_RATE_LIMIT_PREFIX = f"agent-api-test-{uuid.uuid4().hex[:12]}"

_unavailable: dict[str, str] = {}


def require_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (CI=true) because service `name` is unreachable."""
    _unavailable[name] = reason
    if IN_CI:
        pytest.fail(f"{name} unreachable under CI=true: {reason}")
    pytest.skip(f"{name} unreachable: {reason}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, reason in _unavailable.items():
        terminalreporter.write_sep(
            "!", f"{name.upper()} TESTS SKIPPED: {name} unreachable ({reason})", red=True
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if {"integration", "e2e", "reliability"} & set(parts):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- PostgreSQL ------------------------------------------------------------------------------


@asynccontextmanager
async def fresh_database(purpose: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); skips or fails when PostgreSQL
    is unreachable (see `require_service`)."""
    admin = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    name = f"agent_api_{purpose}_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        await admin.dispose()
        require_service("postgresql", f"{type(exc).__name__}: {exc}"[:200])
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def migrate(url: str) -> str:
    from agent_api.infrastructure.db import migrations
    from agent_api.infrastructure.db.database import create_engine

    engine = create_engine(url)
    await migrations.upgrade(engine)
    await engine.dispose()
    return url


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this test session's in-process tests."""
    async with fresh_database("test") as url:
        yield url


@pytest.fixture(scope="session")
async def migrated_pg_url(pg_url: str) -> str:
    """`pg_url` with every migration applied."""
    return await migrate(pg_url)


@pytest.fixture(scope="session")
async def server_pg_url() -> AsyncIterator[str]:
    """A migrated database of its own for server processes (e2e), so what they write never
    shows up in the in-process tests' database."""
    async with fresh_database("e2e") as url:
        yield await migrate(url)


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """The shared test Redis (never flushed: tests use their own key prefixes)."""
    from redis.asyncio import Redis

    client = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        require_service("redis", f"{type(exc).__name__}: {exc}"[:200])
    finally:
        await client.aclose()
    return TEST_REDIS_URL


# --- the app in-process ----------------------------------------------------------------------


def make_settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings for a test: a private SQLite file unless `database_url` is given; nothing is
    read from the environment or a .env file."""
    values.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    values.setdefault("jwt_secret", TEST_JWT_SECRET)
    values.setdefault("rate_limit_key_prefix", TEST_RATE_LIMIT_PREFIX)
    values.setdefault("log_level", "warning")
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running_app(
    settings: Settings, **adapters: Unpack[Adapters]
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app with its lifespan, behind an httpx client on the ASGI transport. The
    adapters passed in stay the caller's to close."""
    app: FastAPI = create_app(settings, **adapters)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on embedded defaults (private SQLite file, in-process limits, demo model)."""
    async with running_app(make_settings(tmp_path)) as c:
        yield c


async def register_and_login(
    client: httpx.AsyncClient, email: str = "ada@example.com", password: str = "correct horse"
) -> dict[str, Any]:
    """Registers `email` and logs in; returns the login payload (tokens and user)."""
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": password, "name": "Ada"}
    )
    assert response.status_code == 201, response.text
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- a real server process -------------------------------------------------------------------


@contextmanager
def live_server(env: dict[str, str], *, timeout: float = 30.0) -> Iterator[str]:
    """Runs `agent-api serve` in a subprocess on a free port; yields its base URL and stops it
    with SIGTERM (SIGKILL after 10 s). The child inherits nothing from a .env file."""
    with server_process(env, timeout=timeout) as (_, base_url):
        yield base_url


@contextmanager
def server_process(
    env: dict[str, str], *, timeout: float = 30.0
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Like `live_server`, but yields the process too (for signal and crash tests)."""
    port = free_port()
    child_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "warning",
        "RATE_LIMIT_KEY_PREFIX": TEST_RATE_LIMIT_PREFIX,
        "AUTH_RATE_LIMIT_PER_MINUTE": "1000",
        **env,
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": str(port),
    }
    # Output goes to a file, not a pipe nobody reads (a full pipe would block the server).
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_api", "serve"],
            env=child_env,
            cwd=env.get("AGENT_API_CWD", str(ROOT)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(proc, base_url, log, timeout)
            yield proc, base_url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_healthy(
    proc: subprocess.Popen[bytes], base_url: str, log: IO[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-5000:]
            raise RuntimeError(f"server exited with {proc.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("server did not become healthy in time")
        time.sleep(0.1)


async def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.05) -> None:
    """Polls an async or sync predicate until truthy; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")
