"""litellm's Python SDK as a client of the server, through its `openai/` provider prefix."""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.clients.conftest import MODEL, WEATHER_PARAMETERS, WEATHER_TOOL, offered_tools
from tests.stub_llm import Reply, StubLLM


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    # The bundled model price table, not a download from the network on import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def call(litellm: ModuleType, server: str, key: str, **kwargs: Any) -> Any:
    return litellm.completion(
        model=f"openai/{MODEL}", api_base=f"{server}/v1", api_key=key, num_retries=0, **kwargs
    )


def test_completion_and_stream(
    litellm: ModuleType, server: str, api_key: str, stub: StubLLM
) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Hello from upstream"), Reply(text="Once upon a time"))
    response = call(litellm, server, api_key, messages=[{"role": "user", "content": "Say hello"}])
    assert response.choices[0].message.content == "Hello from upstream"
    chunks = call(
        litellm, server, api_key, messages=[{"role": "user", "content": "A story"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Once upon a time"
    assert stub.requests[1].body["model"] == MODEL
    assert stub.requests[1].body["messages"][-1]["content"] == "A story"


def test_tools(litellm: ModuleType, server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    response = call(
        litellm,
        server,
        api_key,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    (tool_call,) = choice.message.tool_calls
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    assert offered_tools(stub.requests[0].body)["get_weather"]["parameters"] == WEATHER_PARAMETERS
