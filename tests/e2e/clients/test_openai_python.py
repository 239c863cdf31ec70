"""The official `openai` Python SDK (sync and async) as its documentation shows it."""

from __future__ import annotations

import json
from typing import Any

from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel

from tests.e2e.clients.conftest import (
    MODEL,
    WEATHER_PARAMETERS,
    WEATHER_TOOL,
    offered_tools,
    tool_results,
)
from tests.stub_llm import Reply, StubLLM


class Weather(BaseModel):
    city: str
    temp_c: int


def sync_client(server: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0, timeout=30)


def test_sync_chat(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="Hello from upstream"))
    completion = sync_client(server, api_key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}]
    )
    assert completion.choices[0].message.content == "Hello from upstream"
    assert completion.choices[0].finish_reason == "stop"
    assert stub.requests[0].body["messages"][-1] == {"role": "user", "content": "Say hello"}


async def test_async_chat_and_stream(server: str, api_key: str, stub: StubLLM) -> None:
    client = AsyncOpenAI(base_url=f"{server}/v1", api_key=api_key, max_retries=0, timeout=30)
    stub.reset()
    stub.enqueue(Reply(text="Async answer"), Reply(text="A streamed answer in words"))
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "Async answer"

    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "A streamed answer in words"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert stub.requests[1].body["messages"][-1]["content"] == "stream please"
    await client.close()


def test_parse_with_a_pydantic_response_format(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text='{"city": "Paris", "temp_c": 21}'))
    completion = sync_client(server, api_key).chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris as JSON"}],
        response_format=Weather,
    )
    assert completion.choices[0].message.parsed == Weather(city="Paris", temp_c=21)
    sent = stub.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Weather"
    assert sent["json_schema"]["schema"]["required"] == ["city", "temp_c"]


def test_client_tool_loop_without_conversation_id(server: str, api_key: str, stub: StubLLM) -> None:
    """The function-calling guide's loop: the model calls the client's function, the client
    appends the assistant message and a `tool` message and asks again, with no extension field;
    the server continues the same conversation."""
    client = sync_client(server, api_key)
    stub.reset()
    stub.enqueue(
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(text="It is 21 C and sunny in Paris."),
    )
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    offered = offered_tools(stub.requests[0].body)
    assert offered["get_weather"]["parameters"] == WEATHER_PARAMETERS
    assert "calculator" in offered  # the server's own tools stay on offer

    messages.append(first.choices[0].message)
    result = json.dumps({"temp_c": 21, "sky": "sunny"})
    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "It is 21 C and sunny in Paris."
    assert second.choices[0].finish_reason == "stop"
    assert second.model_extra["conversation_id"] == first.model_extra["conversation_id"]  # type: ignore[index]
    resumed = stub.requests[1].body
    assert tool_results(resumed) == {"get_weather": result}
    # The history is continued, not stored again: one user message, one call, one result.
    roles = [m["role"] for m in resumed["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "tool"]
    assert len(stub.requests) == 2


def test_parameters_reach_the_upstream(server: str, api_key: str, stub: StubLLM) -> None:
    stub.reset()
    stub.enqueue(Reply(text="ok"))
    sync_client(server, api_key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Be brief"}],
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        stop=["END"],
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        logit_bias={"50256": -100},
        user="user-42",
    )
    body = stub.requests[0].body
    expected = {
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "logit_bias": {"50256": -100},
        "user": "user-42",
    }
    assert {name: body.get(name) for name in expected} == expected
    # The length bound may travel under either of OpenAI's names.
    assert 64 in (body.get("max_tokens"), body.get("max_completion_tokens"))


def test_streamed_client_tool_call(server: str, api_key: str, stub: StubLLM) -> None:
    """A client tool call arrives as the spec's tool-call deltas: the first with index, id,
    type and name, later ones with argument fragments, then finish_reason "tool_calls"."""
    stub.reset()
    stub.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    chunks = list(
        sync_client(server, api_key).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What's the weather in Paris?"}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices]
    fragments = [call for calls in deltas if calls for call in calls]
    assert fragments, "no tool-call deltas were streamed"
    first = fragments[0]
    assert (first.index, first.type) == (0, "function")
    assert first.id
    assert first.function is not None
    assert first.function.name == "get_weather"
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"city": "Paris"}
    assert all(f.id is None for f in fragments[1:])
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
