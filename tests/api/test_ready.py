"""Liveness and readiness: `/ready` answers 503 naming the dependency that is down, fast,
and recovers without a restart; `/health` stays 200 meanwhile."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import free_port, make_settings, running_app

PG_CLOSED_PORT_URL = "postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing"


def ready_failure(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"]
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    return error


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"status": "ok"}}


async def test_ready_on_embedded_defaults(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {"status": "ready", "checks": {"database": "ok", "redis": "not configured"}},
    }


async def test_ready_with_postgresql_and_redis(
    tmp_path: Path, migrated_pg_url: str, redis_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=migrated_pg_url, redis_url=redis_url)
    async with running_app(settings) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["data"]["checks"] == {"database": "ok", "redis": "ok"}


async def test_redis_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running_app(settings) as client:
        started = time.monotonic()
        response = await client.get("/ready")
        elapsed = time.monotonic() - started
        health = await client.get("/health")

    error = ready_failure(response)
    assert error["message"] == "not ready: redis down"
    assert error["details"] == {"checks": {"database": "ok", "redis": "down"}}
    assert elapsed < 5
    assert health.status_code == 200


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_database_down(tmp_path: Path, database: str) -> None:
    url = (
        PG_CLOSED_PORT_URL.format(port=free_port())
        if database == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'agent.db'}"
    )
    settings = make_settings(tmp_path, database_url=url, db_auto_migrate=False)
    async with running_app(settings) as client:
        started = time.monotonic()
        response = await client.get("/ready")
        elapsed = time.monotonic() - started
        health = await client.get("/health")

    error = ready_failure(response)
    assert error["message"] == "not ready: database down"
    assert error["details"] == {"checks": {"database": "down", "redis": "not configured"}}
    assert elapsed < 5
    assert health.status_code == 200


async def test_requests_needing_the_database_fail_fast_with_503(tmp_path: Path) -> None:
    url = PG_CLOSED_PORT_URL.format(port=free_port())
    settings = make_settings(tmp_path, database_url=url, db_auto_migrate=False)
    async with running_app(settings) as client:
        response = await client.post(
            "/v1/auth/login", json={"email": "ada@example.com", "password": "correct horse"}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["error"] == {
        "code": "SERVICE_UNAVAILABLE",
        "message": "database unavailable",
    }


# --- recovery, with a private Redis this test starts and kills ---------------------------------


@contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)
        client.close()
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


async def test_ready_recovers_when_redis_comes_back(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    async with running_app(settings) as client:
        with private_redis(port):
            assert (await client.get("/ready")).status_code == 200
        ready_failure(await client.get("/ready"))
        with private_redis(port):
            response = await client.get("/ready")
            assert response.status_code == 200, response.text
