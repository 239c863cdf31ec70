"""Content parts over real HTTP to an OpenAI-compatible upstream: the parts a client sends
arrive upstream exactly as sent, on the first turn and when the stored history is replayed."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.stub_llm import Reply, StubLLM

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n pixels").decode()
PARTS = [
    {"type": "text", "text": "Describe "},
    {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
    {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    {"type": "file", "file": {"file_id": "file-123", "filename": "a.pdf"}},
]


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM() as server:
        yield server


@pytest.fixture
async def client(tmp_path: Path, stub: StubLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(tmp_path, llm_base_url=stub.url)) as c:
        yield c


@pytest.mark.parametrize("stream", [False, True])
async def test_parts_arrive_upstream_as_sent(
    client: httpx.AsyncClient, stub: StubLLM, stream: bool
) -> None:
    headers = bearer((await register_and_login(client))["access_token"])
    stub.enqueue(Reply(text="A cat."), Reply(text="Still a cat."))
    body = {
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PARTS},
        ],
    }
    first = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert first.status_code == 200, first.text
    sent = stub.requests[-1].body["messages"]
    assert sent[-1] == {"role": "user", "content": PARTS}
    assert "cat." in first.text

    # The next turn replays the stored history: the parts go upstream again, unchanged.
    conversation_id = first.headers["x-conversation-id"]
    follow_up = {
        "model": "gpt-4o-mini",
        "conversation_id": conversation_id,
        "messages": [{"role": "user", "content": "And now?"}],
    }
    second = await client.post("/v1/chat/completions", json=follow_up, headers=headers)
    assert second.status_code == 200, second.text
    replayed = stub.requests[-1].body["messages"]
    assert {"role": "user", "content": PARTS} in replayed
    assert replayed[-1] == {"role": "user", "content": "And now?"}
