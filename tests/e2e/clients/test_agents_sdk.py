"""The OpenAI Agents SDK on the Chat Completions surface: `OpenAIChatCompletionsModel` with an
`AsyncOpenAI` client pointed at the server. Tracing export is off (no network but localhost)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.e2e.clients.conftest import MODEL, offered_tools, tool_results
from tests.stub_llm import Reply, StubLLM


class Weather(BaseModel):
    city: str
    temp_c: int


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny, 21 C in {city}"


@pytest.fixture(autouse=True, scope="module")
def _no_tracing_export() -> Iterator[None]:
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


def model(server: str, key: str) -> OpenAIChatCompletionsModel:
    client = AsyncOpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0)
    return OpenAIChatCompletionsModel(model=MODEL, openai_client=client)


async def test_plain_run(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Hello from upstream"))
    agent = Agent(name="Assistant", instructions="Be brief.", model=model(server, api_key))
    result = await Runner.run(agent, "Say hello")
    assert result.final_output == "Hello from upstream"
    sent = stub.requests[0].body["messages"]
    assert {"role": "system", "content": "Be brief."} in sent
    assert sent[-1]["content"] == "Say hello"


async def test_function_tool_is_called_and_its_result_used(
    server: str, api_key: str, stub: StubLLM
) -> None:
    stub.reset()
    stub.enqueue(
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    agent = Agent(
        name="Assistant",
        instructions="Answer weather questions.",
        model=model(server, api_key),
        tools=[get_weather],
    )
    result = await Runner.run(agent, "What's the weather in Paris?")
    assert result.final_output == "It is sunny in Paris."
    offered = offered_tools(stub.requests[0].body)["get_weather"]
    assert offered["parameters"]["properties"]["city"]["type"] == "string"
    assert tool_results(stub.requests[1].body) == {"get_weather": "Sunny, 21 C in Paris"}
    assert len(stub.requests) == 2


async def test_output_type(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text='{"city": "Paris", "temp_c": 21}'))
    agent = Agent(
        name="Assistant",
        instructions="Report the weather.",
        model=model(server, api_key),
        output_type=Weather,
    )
    result = await Runner.run(agent, "Weather in Paris?")
    assert result.final_output == Weather(city="Paris", temp_c=21)
    response_format = stub.requests[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "final_output"
    assert response_format["json_schema"]["schema"]["required"] == ["city", "temp_c"]
