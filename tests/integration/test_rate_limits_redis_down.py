"""Redis failure policy, on a private `redis-server` that the test kills, pauses and restarts
(never the shared one): authenticated requests fail open (counted), login and register fail
closed with 503 + Retry-After, and everything recovers without a restart of the app."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agent_api.infrastructure.metrics import Metrics
from tests.conftest import (
    bearer,
    free_port,
    make_settings,
    require_service,
    running_app,
    wait_until,
)
from tests.unit.fakes import FakeHasher

PASSWORD = "correct horse"


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        require_service("redis-server", "the redis-server binary is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        if redis.process is not None:
            redis.resume()
        redis.kill()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(
    tmp_path: Path, private_redis: PrivateRedis, metrics: Metrics
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, redis_url=private_redis.url)
    async with running_app(settings, hasher=FakeHasher(), metrics=metrics) as client:
        yield client


async def register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "name": "Ada"}
    return await client.post("/v1/auth/register", json=body)


async def login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})


def fail_opens(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("agent_api_rate_limit_fail_open_total") or 0.0


async def test_redis_down_fails_open_for_requests_closed_for_login_and_recovers(
    client: httpx.AsyncClient, private_redis: PrivateRedis, metrics: Metrics
) -> None:
    assert (await register(client, "ada@example.com")).status_code == 201
    token = (await login(client, "ada@example.com")).json()["data"]["access_token"]
    me = await client.get("/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert "x-ratelimit-remaining" in me.headers
    assert fail_opens(metrics) == 0

    private_redis.kill()

    me = await client.get("/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert fail_opens(metrics) == 1
    refused = [await login(client, "ada@example.com"), await register(client, "bob@example.com")]
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert int(response.headers["retry-after"]) >= 1
    assert (await client.get("/v1/auth/me", headers=bearer(token))).status_code == 200
    assert fail_opens(metrics) == 2

    private_redis.start()

    async def login_works() -> bool:
        return (await login(client, "ada@example.com")).status_code == 200

    await wait_until(login_works, timeout=10, interval=0.2)
    me = await client.get("/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert "x-ratelimit-remaining" in me.headers
    assert (await register(client, "bob@example.com")).status_code == 201


async def test_a_hung_redis_does_not_hang_requests(
    client: httpx.AsyncClient, private_redis: PrivateRedis, metrics: Metrics
) -> None:
    assert (await register(client, "ada@example.com")).status_code == 201
    token = (await login(client, "ada@example.com")).json()["data"]["access_token"]
    private_redis.pause()
    try:
        started = time.monotonic()
        answers = [await client.get("/v1/auth/me", headers=bearer(token)) for _ in range(5)]
        elapsed = time.monotonic() - started
        assert [a.status_code for a in answers] == [200] * 5
        assert fail_opens(metrics) == 5
        # One socket timeout, then the store is not tried again for a moment.
        assert elapsed < 5, elapsed
        assert (await login(client, "ada@example.com")).status_code == 503
    finally:
        private_redis.resume()
