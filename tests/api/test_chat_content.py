"""`/v1/chat/completions` content: image, audio and file parts reach the model and the store;
bad parts answer 400 naming the part; no length caps below OpenAI's (the body size and the
context budget are the limits)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import auth
from tests.conftest import make_settings, running_app

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
WAV = base64.b64encode(b"RIFF....WAVEfmt fake").decode()
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7 fake").decode()
IMAGE_MESSAGE = [
    {"type": "text", "text": "What is in "},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    {"type": "text", "text": "these?"},
    {"type": "image_url", "image_url": {"url": PNG}},
]


@pytest.fixture
async def roomy(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The demo model counts one token per byte: a budget that holds 150,000 characters."""
    async with running_app(make_settings(tmp_path, llm_context_tokens=400_000)) as c:
        yield c


async def complete(
    client: httpx.AsyncClient, headers: dict[str, str], messages: list[dict[str, Any]], **extra: Any
) -> httpx.Response:
    body = {"model": "demo", "messages": messages, **extra}
    return await client.post("/v1/chat/completions", json=body, headers=headers)


async def test_an_image_message_is_answered_stored_and_read_back(
    app_client: httpx.AsyncClient,
) -> None:
    headers = await auth(app_client)
    response = await complete(app_client, headers, [{"role": "user", "content": IMAGE_MESSAGE}])
    assert response.status_code == 200, response.text
    body = response.json()
    answer = body["choices"][0]["message"]["content"]
    assert '"What is in these?"' in answer
    assert "(with 2 images)" in answer

    detail = await app_client.get(f"/v1/conversations/{body['conversation_id']}", headers=headers)
    conversation = detail.json()["data"]
    user, assistant = conversation["messages"]
    assert user["content"] == "What is in these?"
    assert user["content_parts"] == IMAGE_MESSAGE
    assert assistant["content_parts"] is None
    assert conversation["conversation"]["title"] == "What is in these?"


async def test_audio_file_and_image_only_messages_are_answered(
    app_client: httpx.AsyncClient,
) -> None:
    headers = await auth(app_client)
    parts = [
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        {"type": "file", "file": {"file_data": PDF, "filename": "a.pdf"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
    ]
    response = await complete(app_client, headers, [{"role": "user", "content": parts}])
    assert response.status_code == 200, response.text
    answer = response.json()["choices"][0]["message"]["content"]
    assert "(with 1 audio clip and 2 files and 1 image)" in answer


async def test_text_only_parts_are_plain_text(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    parts = [{"type": "text", "text": "What is "}, {"type": "text", "text": "6 * 7?"}]
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": parts},
    ]
    response = await complete(app_client, headers, messages)
    assert response.status_code == 200, response.text
    assert "42" in response.json()["choices"][0]["message"]["content"]
    cid = response.json()["conversation_id"]
    stored = (await app_client.get(f"/v1/conversations/{cid}", headers=headers)).json()
    first_user = next(m for m in stored["data"]["messages"] if m["role"] == "user")
    assert (first_user["content"], first_user["content_parts"]) == ("What is 6 * 7?", None)


def _image(url: Any, **more: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **more}}


BAD_PARTS = [
    ({"type": "video_url", "video_url": {}}, "messages[0].content[1].type"),
    ({"type": "image_url"}, "messages[0].content[1].image_url"),
    (_image("http://example.com/cat.png"), "messages[0].content[1].image_url.url"),
    (_image("ftp://example.com/cat.png"), "messages[0].content[1].image_url.url"),
    (_image("data:text/plain;base64,aGk="), "messages[0].content[1].image_url.url"),
    (_image("data:image/png;base64,not base64!"), "messages[0].content[1].image_url.url"),
    (_image(42), "messages[0].content[1].image_url.url"),
    (_image("https://x.example/a.png", detail="ultra"), "messages[0].content[1].image_url.detail"),
    (_image("https://x.example/a.png", size=3), "messages[0].content[1].image_url.size"),
    (
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "ogg"}},
        "messages[0].content[1].input_audio.format",
    ),
    (
        {"type": "input_audio", "input_audio": {"data": "%%%", "format": "mp3"}},
        "messages[0].content[1].input_audio.data",
    ),
    ({"type": "file", "file": {"filename": "a.pdf"}}, "messages[0].content[1].file"),
    ({"type": "file", "file": {"file_id": ""}}, "messages[0].content[1].file.file_id"),
    ({"type": "text", "text": 5}, "messages[0].content[1].text"),
    ({"type": "text", "text": "x", "cache_control": {}}, "messages[0].content[1].cache_control"),
    ({"text": "no type"}, "messages[0].content[1]"),
]


@pytest.mark.parametrize(("part", "param"), BAD_PARTS, ids=[p for _, p in BAD_PARTS])
async def test_bad_parts_are_400_naming_the_part(
    app_client: httpx.AsyncClient, part: dict[str, Any], param: str
) -> None:
    headers = await auth(app_client)
    content = [{"type": "text", "text": "look"}, part]
    response = await complete(app_client, headers, [{"role": "user", "content": content}])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


@pytest.mark.parametrize("role", ["system", "developer", "assistant"])
async def test_media_parts_only_on_user_messages(app_client: httpx.AsyncClient, role: str) -> None:
    headers = await auth(app_client)
    messages = [
        {"role": role, "content": [_image("https://x.example/a.png")]},
        {"role": "user", "content": "hi"},
    ]
    response = await complete(app_client, headers, messages)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages[0].content[0].type"


async def test_parts_with_conversation_id_are_stored_with_the_turn(
    app_client: httpx.AsyncClient,
) -> None:
    headers = await auth(app_client)
    first = await complete(app_client, headers, [{"role": "user", "content": "hello"}])
    cid = first.json()["conversation_id"]
    image_only = [_image("https://x.example/a.png", detail="low")]
    for content in (IMAGE_MESSAGE, image_only):
        response = await complete(
            app_client, headers, [{"role": "user", "content": content}], conversation_id=cid
        )
        assert response.status_code == 200, response.text
        assert "(with " in response.json()["choices"][0]["message"]["content"]
    stored = (await app_client.get(f"/v1/conversations/{cid}", headers=headers)).json()
    users = [m for m in stored["data"]["messages"] if m["role"] == "user"]
    assert [m["content_parts"] for m in users] == [None, IMAGE_MESSAGE, image_only]
    assert [m["content"] for m in users] == ["hello", "What is in these?", ""]


async def test_a_150k_character_message_and_1001_messages_are_answered(
    roomy: httpx.AsyncClient,
) -> None:
    headers = await auth(roomy)
    long = "word " * 30_000
    response = await complete(roomy, headers, [{"role": "user", "content": long}])
    assert response.status_code == 200, response.text
    cid = response.json()["conversation_id"]
    stored = (await roomy.get(f"/v1/conversations/{cid}", headers=headers)).json()
    assert stored["data"]["messages"][0]["content"] == long

    many = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
        for i in range(1_001)
    ]
    response = await complete(roomy, headers, many)
    assert response.status_code == 200, response.text
    cid = response.json()["conversation_id"]
    stored = (await roomy.get(f"/v1/conversations/{cid}", headers=headers)).json()
    assert stored["data"]["conversation"]["message_count"] == 1_002


async def test_the_context_budget_still_bounds_a_message(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    too_long = "word " * 40_000  # 200,000 bytes: over the demo model's 128,000-token budget
    response = await complete(app_client, headers, [{"role": "user", "content": too_long}])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
