"""BraveWebSearch against a local HTTP server playing Brave (real sockets): the request it
sends, the results it keeps, and how each upstream failure is reported without leaking the
upstream's answer."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent_api.domain.errors import ToolFailed, ToolTimeout
from agent_api.infrastructure.brave import BraveWebSearch
from agent_api.tools.web_search import WebSearchResult
from tests.conftest import free_port

KEY = "brave-test-key-0123456789"
LEAK = "upstream-internal-detail"  # appears in every error body; must never reach a caller

BRAVE_ANSWER = {
    "type": "search",
    "query": {"original": "agent api"},
    "web": {
        "type": "search",
        "results": [
            {
                "title": "The <strong>Agent</strong> API &amp; friends",
                "url": "https://example.com/agent",
                "description": "All about <strong>agents</strong>.",
                "age": "2 days ago",
            },
            {"title": "Script", "url": "javascript:alert(1)", "description": "dropped"},
            {"title": "Second", "url": "http://example.org/2", "description": None},
            "not an object",
            {"title": "Third", "url": "https://example.net/3", "description": "third"},
        ],
    },
}


class BraveStub:
    """A threaded HTTP server; `mode` picks the answer: ok, empty, 401, 429, 500, slow, drip,
    malformed, shape. Every request is kept in `requests`."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                stub.requests.append(
                    {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers)}
                )
                stub.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/res/v1/web/search"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        if mode == "slow":
            time.sleep(2)
        if mode == "drip":
            # Headers at once, then a byte every 0.1 s: no single read ever times out.
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "40")
            handler.end_headers()
            for _ in range(40):
                time.sleep(0.1)
                try:
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                except OSError:
                    return
            return
        status, body = {
            "ok": (200, json.dumps(BRAVE_ANSWER)),
            "empty": (200, json.dumps({"type": "search", "query": {"original": "zzz"}})),
            "401": (401, json.dumps({"error": f"invalid token {KEY} {LEAK}"})),
            "429": (429, json.dumps({"error": f"rate limited {LEAK}"})),
            "500": (500, f"<html>stack trace {LEAK}</html>"),
            "slow": (200, json.dumps(BRAVE_ANSWER)),
            "malformed": (200, '{"web": {"results": [' + LEAK),
            "shape": (200, json.dumps({"web": {"results": LEAK}})),
        }[mode]
        data = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (the timeout tests)
            handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def brave() -> Iterator[BraveStub]:
    stub = BraveStub()
    yield stub
    stub.close()


async def search(stub: BraveStub, count: int = 5, timeout: float = 10.0) -> list[WebSearchResult]:
    adapter = BraveWebSearch(KEY, stub.url, timeout=timeout)
    try:
        return await adapter.search("agent api", count)
    finally:
        await adapter.aclose()


async def test_success_sends_query_count_and_key(brave: BraveStub) -> None:
    results = await search(brave, count=3)
    assert results == [
        WebSearchResult(
            "The Agent API & friends", "https://example.com/agent", "All about agents."
        ),
        WebSearchResult("Second", "http://example.org/2", ""),
        WebSearchResult("Third", "https://example.net/3", "third"),
    ]
    [request] = brave.requests
    assert request["path"] == "/res/v1/web/search"
    assert request["query"] == {"q": ["agent api"], "count": ["3"]}
    assert request["headers"]["X-Subscription-Token"] == KEY
    assert request["headers"]["Accept"] == "application/json"


async def test_count_is_bounded_both_ways(brave: BraveStub) -> None:
    assert len(await search(brave, count=1)) == 1
    await search(brave, count=50)
    await search(brave, count=0)
    assert [r["query"]["count"] for r in brave.requests] == [["1"], ["10"], ["1"]]


async def test_no_web_section_means_no_results(brave: BraveStub) -> None:
    brave.mode = "empty"
    assert await search(brave) == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("401", "refused our API key"),
        ("429", "rate limit was reached"),
        ("500", "failed (HTTP 500)"),
        ("malformed", "unreadable answer"),
        ("shape", "unexpected answer"),
    ],
)
async def test_upstream_failures_are_tool_failed_without_the_body(
    brave: BraveStub, mode: str, message: str
) -> None:
    brave.mode = mode
    with pytest.raises(ToolFailed) as caught:
        await search(brave)
    assert message in caught.value.message
    assert LEAK not in caught.value.message
    assert KEY not in caught.value.message


async def test_a_slow_upstream_is_tool_timeout(brave: BraveStub) -> None:
    brave.mode = "slow"
    with pytest.raises(ToolTimeout, match=r"did not answer within 0\.3 s"):
        await search(brave, timeout=0.3)


async def test_a_dripping_upstream_is_bounded_by_the_total_timeout(brave: BraveStub) -> None:
    brave.mode = "drip"
    with pytest.raises(ToolTimeout):
        await search(brave, timeout=0.5)


async def test_an_unreachable_upstream_is_tool_failed() -> None:
    adapter = BraveWebSearch(KEY, f"http://127.0.0.1:{free_port()}/search", timeout=2)
    try:
        with pytest.raises(ToolFailed, match="could not be reached"):
            await adapter.search("q", 5)
    finally:
        await adapter.aclose()
