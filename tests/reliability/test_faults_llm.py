"""The LLM upstream slow, stalled or dead, under concurrent requests to a real server process.

The rules: a request whose upstream is too slow answers 504 within LLM_TIMEOUT + 1 s, one
whose upstream is unreachable 502 within the same bound (retries included); once a stream
has started, the failure is an error event followed by `[DONE]`, within the same bound. The
server stays responsive meanwhile, the conversations are left usable (`failed`, not
`running`), and an upstream that comes back is used again without a restart. (The same
errors in-process, one request at a time: tests/api/test_agent_failures.py.)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, free_port, register_and_login, server_process
from tests.stub_llm import Reply, StubLLM

LLM_TIMEOUT = 1.0
BOUND = LLM_TIMEOUT + 1.0
CONCURRENT = 6  # half streamed, half not


class Upstream:
    """The stub LLM on a port of its own, which can die and come back on that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stub: StubLLM | None = None

    def start(self) -> StubLLM:
        self.stub = StubLLM(port=self.port).start()
        return self.stub

    def kill(self) -> None:
        if self.stub is not None:
            self.stub.stop()
            self.stub = None


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def server(server_pg_url: str, upstream: Upstream) -> Iterator[str]:
    env = {
        "DATABASE_URL": server_pg_url,
        "DB_AUTO_MIGRATE": "false",
        "LLM_BASE_URL": upstream.url,
        "LLM_TIMEOUT": f"{LLM_TIMEOUT:g}s",
        "LLM_MAX_RETRIES": "2",  # retries never extend the time limit
        "RATE_LIMIT_PER_MINUTE": "100000",
        # CONCURRENT runs of one session at once, above the default cap on concurrent runs.
        "MAX_CONCURRENT_RUNS_PER_KEY": "100",
        "MAX_CONCURRENT_RUNS_PER_USER": "100",
    }
    with server_process(env) as (_, base_url):
        yield base_url


@pytest.fixture
async def client(server: str) -> Any:
    async with httpx.AsyncClient(base_url=server, timeout=30) as c:
        login = await register_and_login(c, f"llm-{uuid.uuid4().hex[:8]}@example.com")
        c.headers.update(bearer(login["access_token"]))
        yield c


def data_lines(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


async def chat(client: httpx.AsyncClient, stream: bool) -> tuple[httpx.Response, float]:
    body = {
        "model": "gpt-4o-mini",
        "stream": stream,
        # Its own text: identical concurrent requests of one user are one request retried.
        "messages": [{"role": "user", "content": f"hi {uuid.uuid4().hex[:8]}"}],
    }
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json=body)
    return response, time.monotonic() - started


async def concurrent_chats(client: httpx.AsyncClient) -> list[tuple[httpx.Response, float]]:
    return await asyncio.gather(*(chat(client, stream=i % 2 == 0) for i in range(CONCURRENT)))


def assert_failed_with(response: httpx.Response, status: int, code: str) -> None:
    """A plain error answer (`status`) or, for a stream, an error event then [DONE]."""
    if response.headers["content-type"].startswith("text/event-stream"):
        assert response.status_code == 200
        lines = data_lines(response.text)
        assert lines[-1] == "[DONE]"
        error = json.loads(lines[-2])["error"]
    else:
        assert response.status_code == status, response.text
        error = response.json()["error"]
    assert error["type"] == "server_error"
    assert error["code"] == code


async def conversation_status(client: httpx.AsyncClient, response: httpx.Response) -> str:
    conversation_id = response.headers["x-conversation-id"]
    detail = await client.get(f"/v1/conversations/{conversation_id}")
    status: str = detail.json()["data"]["conversation"]["status"]
    return status


async def test_slow_upstream_is_504_or_an_error_event_within_the_timeout(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    assert upstream.stub is not None
    upstream.stub.enqueue(*(Reply(text="too late", delay=5) for _ in range(CONCURRENT)))
    chats = asyncio.ensure_future(concurrent_chats(client))
    await asyncio.sleep(0.3)
    health_started = time.monotonic()
    health = await client.get("/health")
    health_elapsed = time.monotonic() - health_started
    answers = await chats

    for response, elapsed in answers:
        assert_failed_with(response, 504, "upstream_timeout")
        assert elapsed < BOUND, elapsed
    # The server stays responsive while its upstream calls hang.
    assert health.status_code == 200
    assert health_elapsed < 0.5
    for response, _ in answers:
        assert await conversation_status(client, response) == "failed"
    upstream.stub.reset()
    again, _ = await chat(client, stream=False)
    assert again.status_code == 200
    print(f"\nslow upstream: {CONCURRENT} answers in {max(e for _, e in answers):.2f}s at most")


async def test_upstream_stalling_mid_stream_ends_it_with_an_error_event(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    assert upstream.stub is not None
    words = " ".join(f"word{i}" for i in range(50))
    upstream.stub.enqueue(*(Reply(text=words, stall_after=3) for _ in range(CONCURRENT)))
    answers = await asyncio.gather(*(chat(client, stream=True) for _ in range(CONCURRENT)))
    for response, elapsed in answers:
        assert_failed_with(response, 200, "upstream_timeout")
        assert elapsed < BOUND, elapsed
        assert "word0" in response.text  # what came first was streamed
        assert await conversation_status(client, response) == "failed"
    upstream.stub.reset()
    print(f"\nstalled stream: ended in {max(e for _, e in answers):.2f}s at most")


async def test_dead_upstream_is_502_or_an_error_event_and_recovers(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.kill()
    try:
        answers = await concurrent_chats(client)
    finally:
        upstream.start()
    for response, elapsed in answers:
        assert_failed_with(response, 502, "upstream_error")
        assert elapsed < BOUND, elapsed
        assert await conversation_status(client, response) == "failed"
    # Back on the same address: used again, without a restart of the server.
    response, _ = await chat(client, stream=False)
    assert response.status_code == 200, response.text
    conversation_id = answers[0][0].headers["x-conversation-id"]
    follow_up = await client.post(
        "/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "conversation_id": conversation_id,
            "messages": [{"role": "user", "content": "again"}],
        },
    )
    assert follow_up.status_code == 200, follow_up.text
    print(f"\ndead upstream: {CONCURRENT} answers in {max(e for _, e in answers):.2f}s at most")


async def test_a_retry_cut_short_by_the_timeout_reports_why_it_was_retried(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    """The upstream fails (503), the retry then hangs until the time limit: the answer is
    the failure (502), not a timeout, so a dead upstream is a 502 however the retries and
    their jitter fall."""
    assert upstream.stub is not None
    upstream.stub.reset()
    upstream.stub.enqueue(
        Reply(status=503, body={"error": {"message": "busy"}}, headers={"Retry-After": "0.5"}),
        Reply(text="too late", delay=5),
    )
    response, elapsed = await chat(client, stream=False)
    assert_failed_with(response, 502, "upstream_error")
    assert elapsed < BOUND, elapsed
    assert len(upstream.stub.requests) == 2
    upstream.stub.reset()
