"""GET /metrics and the metrics middleware, on the whole app: request series labelled by route
template (never the raw path), method and status; streams measured to their end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message

from agent_api.api.app import create_app
from agent_api.infrastructure.metrics import Metrics
from tests.conftest import make_settings

REQUESTS = "agent_api_http_requests_total"
LATENCY = "agent_api_http_request_duration_seconds"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples called `name` in a Prometheus text exposition, keyed by sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


class StreamGate:
    """A stream endpoint that sends one chunk, then waits for `release` before the last."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def body(self) -> AsyncIterator[bytes]:
        yield b"first;"
        await self.release.wait()
        yield b"last"


def probe_routes(gate: StreamGate) -> APIRouter:
    """Routes with parameters, nested two routers deep, plus a failing and a streaming one."""
    outer = APIRouter(prefix="/v1/widgets")
    inner = APIRouter(prefix="/{widget_id}/parts")

    @inner.get("/{part_id}")
    async def get_part(widget_id: str, part_id: str) -> dict[str, str]:
        return {"widget": widget_id, "part": part_id}

    @outer.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    @outer.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(gate.body(), media_type="text/plain")

    outer.include_router(inner)
    return outer


@asynccontextmanager
async def probe_app(tmp_path: Path, metrics: Metrics) -> AsyncIterator[tuple[FastAPI, StreamGate]]:
    gate = StreamGate()
    app = create_app(make_settings(tmp_path), metrics=metrics)
    app.include_router(probe_routes(gate))
    async with LifespanManager(app):
        yield app, gate


async def test_metrics_endpoint_serves_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "agent_api_http_requests",
        "agent_api_http_request_duration_seconds",
        "agent_api_llm_request_duration_seconds",
        "agent_api_llm_tokens",
        "agent_api_tool_executions",
        "agent_api_rate_limit_rejections",
        "agent_api_approvals_pending",
    } <= names
    assert (
        samples(response.text, REQUESTS)[labels(route="/health", method="GET", status="200")] == 1
    )


async def test_metrics_need_no_credential_and_are_documented(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    operation = (await client.get("/openapi.json")).json()["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert "security" not in operation


async def test_requests_are_labelled_by_route_template(tmp_path: Path) -> None:
    metrics = Metrics()
    async with probe_app(tmp_path, metrics) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for part in ("p1", "p2", "p3"):
                assert (await client.get(f"/v1/widgets/w7/parts/{part}")).status_code == 200
            assert (await client.get("/v1/auth/me")).status_code == 401
            assert (await client.get("/no/such/path/secret-token")).status_code == 404
            assert (await client.get("/v1/widgets/boom")).status_code == 500
            text = (await client.get("/metrics")).text

    counts = samples(text, REQUESTS)
    template = "/v1/widgets/{widget_id}/parts/{part_id}"
    assert counts[labels(route=template, method="GET", status="200")] == 3
    assert counts[labels(route="/v1/auth/me", method="GET", status="401")] == 1
    assert counts[labels(route="<unmatched>", method="GET", status="404")] == 1
    assert counts[labels(route="/v1/widgets/boom", method="GET", status="500")] == 1
    # Raw paths never become label values.
    for raw in ("w7", "p1", "secret-token"):
        assert raw not in text
    buckets = samples(text, LATENCY + "_count")
    assert buckets[labels(route=template, method="GET")] == 3


async def test_unknown_methods_share_one_label(tmp_path: Path) -> None:
    metrics = Metrics()
    async with probe_app(tmp_path, metrics) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for method in ("BREW", "PROPFIND", "X-ANYTHING"):
                assert (await client.request(method, "/health")).status_code == 405
    text = metrics.render().decode()
    counts = samples(text, REQUESTS)
    assert counts[labels(route="/health", method="OTHER", status="405")] == 3
    assert "BREW" not in text
    assert "PROPFIND" not in text


async def test_a_stream_is_measured_to_its_end(tmp_path: Path) -> None:
    metrics = Metrics()
    route = {"route": "/v1/widgets/stream", "method": "GET"}
    async with probe_app(tmp_path, metrics) as (app, gate):
        first_chunk = asyncio.Event()
        sent: list[Message] = []
        disconnected = asyncio.Event()
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message.get("body") == b"first;":
                first_chunk.set()

        task = asyncio.create_task(app(_http_scope("/v1/widgets/stream"), receive, send))
        await asyncio.wait_for(first_chunk.wait(), 5)
        # Headers and a first chunk are out, the stream is still open: not recorded yet.
        assert sent[0]["status"] == 200
        assert metrics.registry.get_sample_value(LATENCY + "_count", route) is None
        gate.release.set()
        await asyncio.wait_for(task, 5)
        disconnected.set()

    assert metrics.registry.get_sample_value(LATENCY + "_count", route) == 1
    assert metrics.registry.get_sample_value(REQUESTS, {**route, "status": "200"}) == 1


def _http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
