"""The official `openai` Node SDK (npm), run by `node` from `tests/clients/node`."""

from __future__ import annotations

import json

from tests.e2e.clients.conftest import WEATHER_PARAMETERS, offered_tools, run_node, tool_results
from tests.stub_llm import Reply, StubLLM

SCRIPT = "openai_client.mjs"


def test_chat(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Hello from upstream"))
    got = run_node(SCRIPT, "chat", server, api_key)
    assert got == {"content": "Hello from upstream", "finish_reason": "stop"}
    assert stub.requests[0].body["messages"][-1] == {"role": "user", "content": "Say hello"}


def test_stream(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Once upon a time there was a stream"))
    got = run_node(SCRIPT, "stream", server, api_key)
    assert got == {"content": "Once upon a time there was a stream", "finish_reason": "stop"}
    assert stub.requests[0].body["messages"][-1]["content"] == "Tell me a story"


def test_client_tool_loop(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(text="It is 21 C and sunny in Paris."),
    )
    got = run_node(SCRIPT, "tools", server, api_key)
    assert got["first_finish_reason"] == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert got["content"] == "It is 21 C and sunny in Paris."
    assert got["finish_reason"] == "stop"
    assert offered_tools(stub.requests[0].body)["get_weather"]["parameters"] == WEATHER_PARAMETERS
    result = json.loads(tool_results(stub.requests[1].body)["get_weather"])
    assert result == {"city": "Paris", "temp_c": 21, "sky": "sunny"}
    assert len(stub.requests) == 2
