"""Text no database can store is refused at the edge, naming the field, on SQLite and
PostgreSQL alike: a NUL character (PostgreSQL's text and JSONB refuse it) or a lone surrogate
in any string of any request body, and names and ids longer than their column."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_settings, register_and_login, running_app

NUL = "a\x00b"
LONG = "x" * 101  # messages.name / tool_call_id are String(100)


@dataclass
class World:
    client: httpx.AsyncClient
    headers: dict[str, str]
    conversation_id: str
    pending_id: str
    call_id: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each database in turn: a private SQLite file, then the session's PostgreSQL database."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("migrated_pg_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('unstorable') / 'test.db'}"


@pytest.fixture(scope="module")
async def world(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """A running app with a user, an idle conversation and one waiting for an approval (the
    calculator needs one here)."""
    settings = make_settings(
        tmp_path_factory.mktemp("unstorable"),
        database_url=database_url,
        tools_requiring_approval="calculator",
    )
    async with running_app(settings) as client:
        login = await register_and_login(client, f"nul-{uuid.uuid4().hex[:12]}@example.com")
        headers = bearer(login["access_token"])
        idle = await client.post("/v1/conversations", json={"message": "hi"}, headers=headers)
        assert idle.status_code == 201, idle.text
        pending = await client.post(
            "/v1/conversations", json={"message": "What is 2 + 2?"}, headers=headers
        )
        turn = pending.json()["data"]
        assert turn["status"] == "pending_approval", turn
        yield World(
            client=client,
            headers=headers,
            conversation_id=idle.json()["data"]["conversation"]["id"],
            pending_id=turn["conversation"]["id"],
            call_id=turn["pending_approval"]["tool_calls"][0]["id"],
        )


Request = Callable[[World], tuple[str, dict[str, Any]]]


def _register(**body: Any) -> Request:
    base = {"email": f"r-{uuid.uuid4().hex[:8]}@example.com", "password": "long enough pw"}
    return lambda w: ("/v1/auth/register", {**base, "name": "Ada", **body})


def _login(**body: Any) -> Request:
    return lambda w: ("/v1/auth/login", {"email": "a@example.com", "password": "pw", **body})


def _key(**body: Any) -> Request:
    return lambda w: ("/v1/api-keys", {"name": "k", **body})


def _create(**body: Any) -> Request:
    return lambda w: ("/v1/conversations", {"message": "hi", **body})


def _send(**body: Any) -> Request:
    return lambda w: (f"/v1/conversations/{w.conversation_id}/messages", body)


def _approve(**body: Any) -> Request:
    return lambda w: (f"/v1/conversations/{w.pending_id}/approve", {"approved": True, **body})


def _chat(*messages: dict[str, Any], **body: Any) -> Request:
    return lambda w: ("/v1/chat/completions", {"model": "demo", "messages": list(messages), **body})


def _tool_turn(call: dict[str, Any], result: dict[str, Any]) -> Request:
    """A history with an assistant tool call and its result, then a user message."""
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "1"}'},
                **call,
            }
        ],
    }
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "1", **result}
    return _chat({"role": "user", "content": "hi"}, assistant, tool, USER)


USER = {"role": "user", "content": "hi"}
FN = {"name": "calculator", "arguments": "{}"}

NATIVE: list[tuple[str, Request, str]] = [
    ("register email", _register(email=f"a{NUL}@example.com"), "email"),
    ("register password", _register(password=f"long enough{NUL}"), "password"),
    ("register name", _register(name=NUL), "name"),
    ("login email", _login(email=NUL), "email"),
    ("login password", _login(password=NUL), "password"),
    ("refresh token", lambda w: ("/v1/auth/refresh", {"refresh_token": NUL}), "refresh_token"),
    ("key name", _key(name=NUL), "name"),
    ("key allowed_tools", _key(allowed_tools=["calculator", NUL]), "allowed_tools"),
    ("key allowed_models", _key(allowed_models=[NUL]), "allowed_models"),
    ("create message", _create(message=NUL), "message"),
    ("create model", _create(model=NUL), "model"),
    ("create title", _create(title=NUL), "title"),
    ("send message", _send(message=NUL), "message"),
    ("approve reason", _approve(approved=False, reason=NUL), "reason"),
    ("approve tool_call_ids", _approve(tool_call_ids=[NUL]), "tool_call_ids"),
    ("approve argument value", _approve(arguments={"CALL": {"expression": NUL}}), "arguments"),
    ("approve argument key", _approve(arguments={"CALL": {NUL: "2 + 2"}}), "arguments"),
    ("approve lone surrogate", _approve(arguments={"CALL": {"expression": "\ud800"}}), "arguments"),
    ("create lone surrogate", _create(message="a\udfffb"), "message"),
]

OPENAI: list[tuple[str, Request, str]] = [
    ("model", _chat(USER, model=NUL), "model"),
    ("content", _chat({"role": "user", "content": NUL}), "messages.0.content"),
    ("system content", _chat({"role": "system", "content": NUL}, USER), "messages.0.content"),
    (
        "content part",
        _chat({"role": "user", "content": [{"type": "text", "text": NUL}]}),
        "messages.0.content.parts.0.text",
    ),
    ("user name", _chat({**USER, "name": NUL}), "messages.0.name"),
    ("call id", _tool_turn({"id": NUL}, {}), "messages.1.tool_calls.0.id"),
    (
        "call name",
        _tool_turn({"function": {**FN, "name": NUL}}, {}),
        "messages.1.tool_calls.0.function.name",
    ),
    (
        "call arguments",
        _tool_turn({"function": {**FN, "arguments": f'{{"x": "{NUL}"}}'}}, {}),
        "messages.1.tool_calls.0.function.arguments",
    ),
    ("tool message id", _tool_turn({}, {"tool_call_id": NUL}), "messages.2.tool_call_id"),
    ("tool message name", _tool_turn({}, {"name": NUL}), "messages.2.name"),
    ("tool message content", _tool_turn({}, {"content": NUL}), "messages.2.content"),
    ("over-long user name", _chat({**USER, "name": LONG}), "messages.0.name"),
    ("over-long call id", _tool_turn({"id": LONG}, {}), "messages.1.tool_calls.0.id"),
    (
        "over-long call name",
        _tool_turn({"function": {**FN, "name": LONG}}, {}),
        "messages.1.tool_calls.0.function.name",
    ),
    ("over-long tool_call_id", _tool_turn({}, {"tool_call_id": LONG}), "messages.2.tool_call_id"),
    ("over-long tool name", _tool_turn({}, {"name": LONG}), "messages.2.name"),
]


def _with_call_id(body: Any, call_id: str) -> Any:
    """`body` with the placeholder CALL replaced by the pending call's real id."""
    if isinstance(body, dict):
        return {(call_id if k == "CALL" else k): _with_call_id(v, call_id) for k, v in body.items()}
    return body


async def _post(world: World, path: str, body: Any) -> httpx.Response:
    # json.dumps escapes lone surrogates (`\ud800`), which httpx's `json=` cannot encode.
    headers = {**world.headers, "Content-Type": "application/json"}
    return await world.client.post(path, content=json.dumps(body), headers=headers)


@pytest.mark.parametrize(("case", "request_of", "field"), NATIVE, ids=[c[0] for c in NATIVE])
async def test_native_bodies_refuse_unstorable_text_naming_the_field(
    world: World, case: str, request_of: Request, field: str
) -> None:
    path, body = request_of(world)
    response = await _post(world, path, _with_call_id(body, world.call_id))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    fields = [d["field"] for d in error["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


@pytest.mark.parametrize(("case", "request_of", "param"), OPENAI, ids=[c[0] for c in OPENAI])
async def test_chat_completions_refuse_unstorable_text_naming_the_param(
    world: World, case: str, request_of: Request, param: str
) -> None:
    path, body = request_of(world)
    response = await _post(world, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


async def test_a_long_name_in_a_native_body_is_refused(world: World) -> None:
    response = await world.client.post(
        "/v1/conversations/" + world.pending_id + "/approve",
        json={"approved": True, "tool_call_ids": [LONG]},
        headers=world.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"].startswith("tool_call_ids")


async def test_a_cursor_with_nul_is_refused(world: World) -> None:
    response = await world.client.get(
        "/v1/conversations", params={"cursor": NUL}, headers=world.headers
    )
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == ["cursor"]


async def test_the_world_still_works_after_the_refusals(world: World) -> None:
    """Nothing above left the database or a conversation in a broken state."""
    response = await world.client.post(
        f"/v1/conversations/{world.conversation_id}/messages",
        json={"message": "hello again"},
        headers=world.headers,
    )
    assert response.status_code == 200, response.text
