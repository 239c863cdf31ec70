"""LangChain's `ChatOpenAI` pointed at the server: chat, stream, `bind_tools`, an agent loop
mixing a client tool and a server tool, and `with_structured_output` with every method.

`langgraph.prebuilt.create_react_agent` is deprecated in the installed LangGraph 1.x in favour
of `langchain.agents.create_agent`, the same tool-calling loop; the tests use the latter."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.e2e.clients.conftest import MODEL, offered_tools, tool_results
from tests.stub_llm import Reply, StubLLM


class Weather(BaseModel):
    city: str
    temp_c: int


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny, 21 C in {city}"


def chat_model(server: str, key: str) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=f"{server}/v1", api_key=key, max_retries=0)  # type: ignore[arg-type]


def test_invoke_and_stream(server: str, api_key: str, stub: StubLLM) -> None:
    llm = chat_model(server, api_key)
    stub.reset()
    stub.enqueue(Reply(text="Hello from upstream"), Reply(text="Once upon a time"))
    assert llm.invoke("Say hello").content == "Hello from upstream"
    assert "".join(str(chunk.content) for chunk in llm.stream("Tell me a story")) == (
        "Once upon a time"
    )
    assert stub.requests[1].body["stream"] is True
    assert stub.requests[1].body["messages"][-1]["content"] == "Tell me a story"


def test_bind_tools_returns_the_models_tool_call(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    answer = chat_model(server, api_key).bind_tools([get_weather]).invoke("Weather in Paris?")
    assert isinstance(answer, AIMessage)
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    offered = offered_tools(stub.requests[0].body)["get_weather"]
    assert offered["description"] == "The current weather in a city."
    assert offered["parameters"]["properties"] == {"city": {"type": "string"}}


def test_agent_loop_with_a_client_tool_and_a_server_tool(
    server: str, api_key: str, stub: StubLLM
) -> None:
    """The model calls the server's calculator and the client's get_weather in one step: the
    server runs the calculator itself and hands only get_weather to the agent, whose result
    resumes the same run."""
    stub.reset()
    stub.enqueue(
        Reply(
            tool_calls=[("calculator", {"expression": "6 * 7"}), ("get_weather", {"city": "Paris"})]
        ),
        Reply(text="6 * 7 = 42, and it is sunny in Paris."),
    )
    agent = create_agent(chat_model(server, api_key), tools=[get_weather])
    state = agent.invoke({"messages": [{"role": "user", "content": "6 * 7, and Paris weather?"}]})

    messages = state["messages"]
    assert messages[-1].content == "6 * 7 = 42, and it is sunny in Paris."
    handed_over = [c["name"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert handed_over == ["get_weather"]
    assert [m.content for m in messages if isinstance(m, ToolMessage)] == ["Sunny, 21 C in Paris"]
    assert len(stub.requests) == 2
    results = tool_results(stub.requests[1].body)
    assert results["get_weather"] == "Sunny, 21 C in Paris"
    assert json.loads(results["calculator"])["result"] == 42


STRUCTURED: dict[str, tuple[Reply, Any]] = {
    "function_calling": (Reply(tool_calls=[("Weather", {"city": "Paris", "temp_c": 21})]), None),
    "json_mode": (Reply(text='{"city": "Paris", "temp_c": 21}'), {"type": "json_object"}),
    "json_schema": (Reply(text='{"city": "Paris", "temp_c": 21}'), "Weather"),
}


@pytest.mark.parametrize("method", list(STRUCTURED))
def test_with_structured_output(
    method: Literal["function_calling", "json_mode", "json_schema"],
    server: str,
    api_key: str,
    stub: StubLLM,
) -> None:
    reply, expected_format = STRUCTURED[method]
    stub.reset()
    stub.enqueue(reply)
    structured = chat_model(server, api_key).with_structured_output(Weather, method=method)
    assert structured.invoke("Weather in Paris as JSON") == Weather(city="Paris", temp_c=21)
    body = stub.requests[0].body
    if method == "function_calling":
        assert offered_tools(body)["Weather"]["parameters"]["required"] == ["city", "temp_c"]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    elif method == "json_mode":
        assert body["response_format"] == expected_format
    else:
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == expected_format
