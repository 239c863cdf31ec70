"""A client that leaves mid-stream: the upstream call is cancelled within a second, and what
was generated is kept, marked incomplete, with its usage."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.e2e.conftest import login
from tests.stub_llm import Reply, StubLLM


def test_disconnect_cancels_upstream_and_keeps_the_partial_answer(
    server: str, stub: StubLLM
) -> None:
    token = login(server, f"gone-{uuid.uuid4().hex[:8]}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    stub.reset()
    words = " ".join(f"word{i}" for i in range(200))
    stub.enqueue(Reply(text=words, chunk_delay=0.05))
    with httpx.stream(
        "POST",
        f"{server}/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "talk"}],
        },
        headers=headers,
        timeout=30,
    ) as response:
        conversation_id = response.headers["x-conversation-id"]
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: ") and "word" in line:
                received += 1
                if received == 5:
                    break
    left_at = time.monotonic()
    deadline = left_at + 1.0
    while not stub.disconnects and time.monotonic() < deadline + 0.5:
        time.sleep(0.02)
    assert stub.disconnects, "the upstream request was not cancelled"
    assert stub.disconnects[0].events_sent < 200

    detail = None
    for _ in range(50):
        detail = httpx.get(f"{server}/v1/conversations/{conversation_id}", headers=headers).json()
        if detail["data"]["conversation"]["status"] != "running":
            break
        time.sleep(0.05)
    assert detail is not None
    conversation = detail["data"]["conversation"]
    assert conversation["status"] == "active"
    assistant = detail["data"]["messages"][-1]
    assert assistant["role"] == "assistant"
    assert assistant["is_complete"] is False
    assert assistant["content"].startswith("word0 word1")
    assert assistant["completion_tokens"] > 0
    assert conversation["total_tokens"] > 0
