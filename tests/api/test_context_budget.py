"""The model's context budget: a long history is cut to fit (oldest turns first) and the cut is
recorded on the answer; a last turn that cannot fit answers 400 `context_length_exceeded`
without calling the model, on the native and the OpenAI surfaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import sse_events
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.unit.agent_fakes import ScriptedChatModel, text

# The offline `demo` model has no known tokenizer: its text is counted at a token per byte,
# so these sizes translate directly into the budget.
BUDGET = 5_000
RESERVE = 500
TURN = 1_500  # characters of each user message: the last turn and the one before fit


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel(text("ok"))


@pytest.fixture
async def client(tmp_path: Path, model: ScriptedChatModel) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path, llm_context_tokens=BUDGET, llm_context_reserve_tokens=RESERVE
    )
    async with running_app(settings, chat_model=model) as c:
        yield c


async def headers_for(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await register_and_login(client))["access_token"])


def turn(index: int) -> str:
    return f"turn {index}: " + "x" * TURN


def sent(model: ScriptedChatModel) -> list[dict[str, Any]]:
    """What the model received in its last call, role and content per message."""
    return [{"role": m.role, "content": m.content} for m in model.requests[-1].messages]


async def test_a_long_history_is_cut_to_the_budget_oldest_turns_first(
    client: httpx.AsyncClient, model: ScriptedChatModel
) -> None:
    headers = await headers_for(client)
    created = await client.post("/v1/conversations", json={"message": turn(0)}, headers=headers)
    assert created.status_code == 201, created.text
    conversation_id = created.json()["data"]["conversation"]["id"]
    for index in range(1, 5):
        answer = await client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json={"message": turn(index)},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text

    received = sent(model)
    assert received[0]["role"] == "system"
    contents = [m["content"] for m in received]
    assert turn(4) in contents  # the last user turn is always sent
    assert turn(3) in contents
    assert turn(0) not in contents  # the oldest turns went first
    assert turn(1) not in contents
    # Whole turns: a kept user message keeps its answer, a dropped one loses it too.
    assert [m["role"] for m in received[1:]] == ["user", "assistant", "user"]
    assert sum(len(m["content"] or "") for m in received) < BUDGET - RESERVE

    detail = await client.get(f"/v1/conversations/{conversation_id}", headers=headers)
    messages = detail.json()["data"]["messages"]
    answers = [m for m in messages if m["role"] == "assistant"]
    assert answers[0]["context_dropped"] == 0  # the first turn fitted whole
    # The last answer was written without the first three turns (user + answer each).
    assert answers[-1]["context_dropped"] == 6
    assert all(m["context_dropped"] == 0 for m in messages if m["role"] == "user")


async def test_openai_history_is_cut_the_same_way(
    client: httpx.AsyncClient, model: ScriptedChatModel
) -> None:
    headers = await headers_for(client)
    history: list[dict[str, str]] = []
    for index in range(3):
        history += [
            {"role": "user", "content": turn(index)},
            {"role": "assistant", "content": f"answer {index}"},
        ]
    history.append({"role": "user", "content": turn(3)})
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "system", "content": "Be brief."}, *history]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    received = sent(model)
    # The client's system prompt is kept with the server's, whatever is dropped.
    assert {"role": "system", "content": "Be brief."} in received
    assert received[-1] == {"role": "user", "content": turn(3)}
    assert {"role": "user", "content": turn(0)} not in received


@pytest.mark.parametrize("stream", [False, True])
async def test_a_last_turn_that_cannot_fit_is_refused_natively_without_calling_the_model(
    client: httpx.AsyncClient, model: ScriptedChatModel, stream: bool
) -> None:
    headers = await headers_for(client)
    response = await client.post(
        "/v1/conversations", json={"message": "y" * BUDGET, "stream": stream}, headers=headers
    )
    if stream:
        error = sse_events(response.text)[-2]
        assert error["type"] == "error"
        assert error["code"] == "CONTEXT_LENGTH_EXCEEDED"
    else:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "CONTEXT_LENGTH_EXCEEDED"
    assert model.requests == []


async def test_a_last_turn_that_cannot_fit_is_openais_context_length_exceeded(
    client: httpx.AsyncClient, model: ScriptedChatModel
) -> None:
    headers = await headers_for(client)
    body = {"model": "demo", "messages": [{"role": "user", "content": "y" * BUDGET}]}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "messages"

    streamed = await client.post(
        "/v1/chat/completions", json={**body, "stream": True}, headers=headers
    )
    assert sse_events(streamed.text)[-2]["error"]["code"] == "context_length_exceeded"
    assert model.requests == []


async def test_known_models_are_counted_with_their_own_tokenizer_and_budget(
    tmp_path: Path,
) -> None:
    # 3,000 tokens of o200k_base text in 18,000 bytes: the byte estimate would refuse it.
    words = "hello " * 3_000
    model = ScriptedChatModel(text("ok"))
    settings = make_settings(
        tmp_path,
        llm_base_url="http://127.0.0.1:9",  # never called: the scripted model answers
        llm_default_model="gpt-4o-mini",
        llm_context_tokens=BUDGET,
        llm_context_tokens_by_model={"gpt-4o-mini": 5_000},
        llm_context_reserve_tokens=RESERVE,
    )
    async with running_app(settings, chat_model=model) as client:
        headers = await headers_for(client)
        created = await client.post("/v1/conversations", json={"message": words}, headers=headers)
        assert created.status_code == 201, created.text
        conversation_id = created.json()["data"]["conversation"]["id"]
        again = await client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json={"message": "and again: " + words},
            headers=headers,
        )
        assert again.status_code == 200, again.text
    # Both turns (~6,000 tokens) exceed gpt-4o-mini's 5,000: the first went.
    assert [m.role for m in model.requests[-1].messages] == ["system", "user"]
    assert again.json()["data"]["messages"][-1]["context_dropped"] == 2
