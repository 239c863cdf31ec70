"""The Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`), run by `node` from
`tests/clients/node`."""

from __future__ import annotations

import json

from tests.e2e.clients.conftest import offered_tools, run_node, tool_results
from tests.stub_llm import Reply, StubLLM

SCRIPT = "vercel_ai.mjs"


def test_generate_text(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Hello from upstream"))
    got = run_node(SCRIPT, "chat", server, api_key)
    assert got == {"text": "Hello from upstream", "finish_reason": "stop"}
    assert stub.requests[0].body["messages"][-1]["content"] == "Say hello"


def test_stream_text(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Once upon a time there was a stream"))
    got = run_node(SCRIPT, "stream", server, api_key)
    assert got == {"text": "Once upon a time there was a stream", "finish_reason": "stop"}
    assert stub.requests[0].body["stream"] is True


def test_tool_is_executed_and_its_result_used(server: str, api_key: str, stub: StubLLM) -> None:
    """Multi-step `generateText`: the model calls the zod-typed tool, the SDK runs its
    `execute`, sends the result back, and the model's answer uses it."""
    stub.reset()
    stub.enqueue(
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(text="It is 21 C and sunny in Paris."),
    )
    got = run_node(SCRIPT, "tools", server, api_key)
    weather = {"city": "Paris", "temp_c": 21, "sky": "sunny"}
    assert got["steps"][0] == {
        "finish_reason": "tool-calls",
        "tool_calls": [{"name": "get_weather", "input": {"city": "Paris"}}],
        "tool_results": [weather],
    }
    assert got["text"] == "It is 21 C and sunny in Paris."
    assert len(got["steps"]) == 2
    offered = offered_tools(stub.requests[0].body)["get_weather"]
    assert offered["description"] == "The current weather in a city."
    assert offered["parameters"]["properties"] == {"city": {"type": "string"}}
    assert json.loads(tool_results(stub.requests[1].body)["get_weather"]) == weather
