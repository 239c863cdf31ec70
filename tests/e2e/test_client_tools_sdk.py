"""A client-side tool loop with the official `openai` SDK against a real server process: the
model calls a client tool and a server tool in one step, the server runs its own, the client
runs its own and sends the result back, and the final answer uses both."""

from __future__ import annotations

import json
import uuid
from typing import Any

from openai import OpenAI

from tests.e2e.conftest import create_key, login
from tests.stub_llm import Reply, StubLLM

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_a_client_tool_loop_beside_a_server_tool(server: str, stub: StubLLM) -> None:
    key = create_key(server, login(server, f"loop-{uuid.uuid4().hex[:8]}@example.com"))
    sdk = OpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0, timeout=30)
    stub.reset()
    stub.enqueue(
        Reply(
            tool_calls=[
                ("calculator", {"expression": "6 * 7"}, "call_calc"),
                ("get_weather", {"city": "Oslo"}, "call_weather"),
            ]
        ),
        Reply(text="It is 3 degrees in Oslo, and 6 * 7 = 42."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo? And 6 * 7?"}]
    first = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[WEATHER], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_weather"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    offered = [t["function"]["name"] for t in stub.requests[0].body["tools"]]
    assert offered == ["calculator", "get_weather"]
    assert stub.requests[0].body["tool_choice"] == "required"
    assert len(stub.requests) == 1  # parked: the model is not asked again without the result

    conversation_id = first.model_extra["conversation_id"]  # type: ignore[index]
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 3}'})
    final = sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        tools=[WEATHER],
        extra_body={"conversation_id": conversation_id},
    )
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "It is 3 degrees in Oslo, and 6 * 7 = 42."
    sent = stub.requests[1].body["messages"]
    results = {m["tool_call_id"]: m["content"] for m in sent if m["role"] == "tool"}
    assert results["call_weather"] == '{"celsius": 3}'
    assert '"result": 42' in results["call_calc"]
    assistant = next(m for m in sent if m.get("tool_calls"))
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_calc", "call_weather"]
