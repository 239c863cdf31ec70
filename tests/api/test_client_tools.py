"""Client tools through `/v1/chat/completions`: offered beside the server's, their calls handed
back as `tool_calls`, the conversation parked until the client's `tool` messages resume it;
`tool_choice`; and every malformed tool field refused with the param named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import auth, sse_events
from tests.conftest import make_settings, running_app
from tests.unit.agent_fakes import ScriptedChatModel, calls, text

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
USER = {"role": "user", "content": "Weather in Oslo, and 2+3?"}
MIXED = calls(("s1", "calculator", {"expression": "2+3"}), ("c1", "get_weather", {"city": "Oslo"}))


async def post(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json={"model": "demo", **body}, headers=headers
    )


async def test_a_client_tool_loop_with_a_server_tool_in_the_same_step(tmp_path: Path) -> None:
    model = ScriptedChatModel(MIXED, text("3 degrees in Oslo; 2+3 is 5"))
    async with running_app(make_settings(tmp_path), chat_model=model) as client:
        headers = await auth(client)
        first = await post(client, headers, messages=[USER], tools=[WEATHER])
        assert first.status_code == 200, first.text
        body = first.json()
        (choice,) = body["choices"]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["tool_calls"] == [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ]
        offered = [t.name for t in model.requests[0].tools]
        assert "calculator" in offered
        assert "get_weather" in offered
        assistant = {"role": "assistant", "content": None, **choice["message"]}
        result = {"role": "tool", "tool_call_id": "c1", "content": '{"celsius": 3}'}
        second = await post(
            client,
            headers,
            messages=[USER, assistant, result],
            tools=[WEATHER],
            conversation_id=body["conversation_id"],
        )
        assert second.status_code == 200, second.text
        final = second.json()["choices"][0]
        assert final["finish_reason"] == "stop"
        assert final["message"]["content"] == "3 degrees in Oslo; 2+3 is 5"
        seen = {m.tool_call_id: m.content for m in model.requests[1].messages if m.role == "tool"}
        assert seen["c1"] == '{"celsius": 3}'
        assert "5" in (seen["s1"] or "")  # the server tool ran in the first step


async def test_the_stream_hands_over_client_calls_as_spec_exact_deltas(tmp_path: Path) -> None:
    model = ScriptedChatModel(MIXED)
    async with running_app(make_settings(tmp_path), chat_model=model) as client:
        headers = await auth(client)
        response = await post(client, headers, messages=[USER], tools=[WEATHER], stream=True)
        assert response.status_code == 200
        events = sse_events(response.text)
        assert events[-1] == "[DONE]"
        deltas = [e["choices"][0]["delta"] for e in events[:-1] if e["choices"]]
        calls_out = [d["tool_calls"] for d in deltas if "tool_calls" in d]
        assert calls_out == [
            [
                {
                    "index": 0,
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ]
        ]
        assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
        status = await client.get(
            f"/v1/conversations/{events[-2]['conversation_id']}", headers=headers
        )
        assert status.json()["data"]["conversation"]["status"] == "awaiting_tools"


async def test_a_user_turn_or_wrong_results_while_waiting_are_refused(tmp_path: Path) -> None:
    model = ScriptedChatModel(calls(("c1", "get_weather", {})), text("x"))
    async with running_app(make_settings(tmp_path), chat_model=model) as client:
        headers = await auth(client)
        first = (await post(client, headers, messages=[USER], tools=[WEATHER])).json()
        conversation_id = first["conversation_id"]
        user = await post(
            client, headers, messages=[USER], tools=[WEATHER], conversation_id=conversation_id
        )
        assert user.status_code == 400
        assert user.json()["error"]["param"] == "messages"
        assert "c1" in user.json()["error"]["message"]
        wrong = {"role": "tool", "tool_call_id": "c7", "content": "{}"}
        refused = await post(
            client, headers, messages=[wrong], tools=[WEATHER], conversation_id=conversation_id
        )
        assert refused.status_code == 400
        assert "c7" in refused.json()["error"]["message"]
        other = await auth(client, "eve@example.com")
        right = {"role": "tool", "tool_call_id": "c1", "content": "{}"}
        foreign = await post(
            client, other, messages=[right], tools=[WEATHER], conversation_id=conversation_id
        )
        assert foreign.status_code == 404
        assert len(model.requests) == 1


@pytest.mark.parametrize(
    ("tools", "tool_choice", "param"),
    [
        ([{"type": "retrieval"}], None, "tools[0].type"),
        (
            [{"type": "function", "function": {"name": "get weather"}}],
            None,
            "tools[0].function.name",
        ),
        ([WEATHER, WEATHER], None, "tools"),
        ([{"type": "function", "function": {"name": "calculator"}}], None, "tools"),
        (
            [WEATHER],
            {"type": "function", "function": {"name": "get_time"}},
            "tool_choice",
        ),
    ],
)
async def test_malformed_tools_and_choices_are_refused_by_param(
    app_client: httpx.AsyncClient, tools: list[Any], tool_choice: Any, param: str
) -> None:
    headers = await auth(app_client)
    extra = {} if tool_choice is None else {"tool_choice": tool_choice}
    response = await post(app_client, headers, messages=[USER], tools=tools, **extra)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_tool_choice_none_and_named_reach_the_model(tmp_path: Path) -> None:
    model = ScriptedChatModel(text("plain"))
    async with running_app(make_settings(tmp_path), chat_model=model) as client:
        headers = await auth(client)
        none = await post(client, headers, messages=[USER], tools=[WEATHER], tool_choice="none")
        assert none.status_code == 200
        assert model.requests[-1].tools == ()
        named = {"type": "function", "function": {"name": "get_weather"}}
        forced = await post(client, headers, messages=[USER], tools=[WEATHER], tool_choice=named)
        assert forced.status_code == 200
        assert model.requests[-1].tool_choice == "get_weather"


async def test_an_approval_with_client_tools_is_text_and_stop(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tools_requiring_approval="calculator")
    model = ScriptedChatModel(calls(("s1", "calculator", {"expression": "2+3"})))
    async with running_app(settings, chat_model=model) as client:
        headers = await auth(client)
        response = await post(client, headers, messages=[USER], tools=[WEATHER])
        body = response.json()
        choice = body["choices"][0]
        assert choice["finish_reason"] == "stop"
        assert "tool_calls" not in choice["message"]
        assert "calculator" in choice["message"]["content"]
        assert [c["id"] for c in body["pending_approval"]["tool_calls"]] == ["s1"]
        streamed = await post(client, headers, messages=[USER], tools=[WEATHER], stream=True)
        events = sse_events(streamed.text)
        text_out = "".join(
            e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"]
        )
        assert "calculator" in text_out
        assert events[-2]["choices"][0]["finish_reason"] == "stop"
        assert json.dumps(events[-2]["pending_approval"]).count("s1") == 1
