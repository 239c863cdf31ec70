"""Fixtures of the client tests: one server process and one stub upstream for the package,
an API key per module, and a runner for the Node clients.

Every test here drives an unchanged client library the way its documentation shows and asserts
both sides: what the upstream received (`stub.requests[i].body`) and what the client got."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, live_server, require_service
from tests.e2e.conftest import create_key, login, server_env
from tests.stub_llm import StubLLM

NODE_CLIENTS = ROOT / "tests" / "clients" / "node"
MODEL = "gpt-4o-mini"

# One client-side function tool, in the Chat Completions shape, shared by the tests.
WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}


@pytest.fixture(scope="package")
def stub() -> Iterator[StubLLM]:
    """One stub upstream for every client module (each test resets it first)."""
    with StubLLM() as upstream:
        yield upstream


@pytest.fixture(scope="package")
def server(server_pg_url: str, redis_url: str, stub: StubLLM) -> Iterator[str]:
    """One server process for every client module: a start costs seconds, a client test
    milliseconds. More time to start than elsewhere: the client libraries are heavy imports,
    and a loaded machine must not turn a slow start into a failed test."""
    env = server_env(server_pg_url, redis_url, stub, DB_AUTO_MIGRATE="false")
    with live_server(env, timeout=120) as url:
        yield url


@pytest.fixture(scope="module")
def api_key(server: str) -> str:
    """A key of a fresh user on the module's server (every built-in tool allowed)."""
    return create_key(server, login(server, f"client-{uuid.uuid4().hex[:8]}@example.com"))


def offered_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function tools an upstream request offered, by name."""
    return {t["function"]["name"]: t["function"] for t in body.get("tools") or ()}


def tool_results(body: dict[str, Any]) -> dict[str, str]:
    """The `tool` messages an upstream request carried, as {called function name: content}."""
    names = {
        call["id"]: call["function"]["name"]
        for message in body["messages"]
        for call in message.get("tool_calls") or ()
    }
    return {
        names.get(m["tool_call_id"], m["tool_call_id"]): m["content"]
        for m in body["messages"]
        if m["role"] == "tool"
    }


def run_node(script: str, mode: str, server: str, key: str) -> Any:
    """Runs `tests/clients/node/<script>` with `mode` as its argument and the server's base URL
    and key in its environment; returns the JSON it printed. Without Node or the installed
    packages (`make install`) the test is skipped loudly, or fails under CI=true."""
    node = shutil.which("node")
    if node is None:
        require_service("node", "node is not on PATH")
    if not (NODE_CLIENTS / "node_modules" / ".package-lock.json").exists():
        require_service("node", f"{NODE_CLIENTS}/node_modules missing: run `make install`")
    result = subprocess.run(
        [str(node), script, mode],
        cwd=NODE_CLIENTS,
        env={
            "PATH": os.environ.get("PATH", ""),
            "AGENT_API_BASE_URL": f"{server}/v1",
            "AGENT_API_KEY": key,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
