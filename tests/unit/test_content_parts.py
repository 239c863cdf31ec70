"""Content parts: the domain rule, the upstream wire shape and the token estimates."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from agent_api.domain.chat import ChatMessage
from agent_api.domain.conversations import Message, NewMessage
from agent_api.domain.errors import InvalidRequest
from agent_api.infrastructure.llm.openai_wire import message_to_wire
from agent_api.infrastructure.tokenizers import (
    IMAGE_HIGH_TOKENS,
    IMAGE_LOW_TOKENS,
    ByteEstimateCounter,
    TiktokenCounter,
    media_tokens,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BIG_PNG = "data:image/png;base64," + base64.b64encode(b"\x00" * 3_000_000).decode()


def image(url: str, detail: str | None = None) -> dict[str, object]:
    inner: dict[str, object] = {"url": url}
    if detail is not None:
        inner["detail"] = detail
    return {"type": "image_url", "image_url": inner}


def test_only_user_messages_carry_parts() -> None:
    parts = (image("https://x.example/a.png"),)
    assert ChatMessage("user", "", parts=parts).has_content
    for role in ("system", "assistant"):
        with pytest.raises(InvalidRequest):
            ChatMessage(role, "x", parts=parts)  # type: ignore[arg-type]
    assert not ChatMessage("user", "").has_content


def test_parts_go_upstream_as_sent_and_text_stays_plain() -> None:
    parts = (
        {"type": "text", "text": "what is this?"},
        image(BIG_PNG, "high"),
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    )
    wire = message_to_wire(ChatMessage("user", "what is this?", parts=parts))
    assert wire == {"role": "user", "content": [dict(p) for p in parts]}
    assert message_to_wire(ChatMessage.user("hi")) == {"role": "user", "content": "hi"}


def test_parts_survive_the_store_round_trip_values() -> None:
    parts = (image("https://x.example/a.png"),)
    new = NewMessage.of_chat(uuid.uuid4(), ChatMessage("user", "", parts=parts), NOW)
    assert new.parts == parts
    stored = Message(
        id=new.conversation_id,
        conversation_id=new.conversation_id,
        seq=1,
        role="user",
        created_at=NOW,
        parts=parts,
    )
    assert stored.to_chat().parts == parts


def test_images_count_by_detail_not_by_their_base64() -> None:
    low = ChatMessage("user", "", parts=(image(BIG_PNG, "low"),))
    high = ChatMessage("user", "", parts=(image(BIG_PNG, "high"),))
    auto = ChatMessage("user", "", parts=(image("https://x.example/a.png"),))
    assert media_tokens(low) == IMAGE_LOW_TOKENS == 85
    assert media_tokens(high) == media_tokens(auto) == IMAGE_HIGH_TOKENS == 1445
    for counter in (TiktokenCounter("o200k_base"), ByteEstimateCounter()):
        base = counter.count_message(ChatMessage.user(""))
        assert counter.count_message(low) == base + 85
        assert counter.count_message(high) < 10_000  # 4 MB of base64 is not read as text


def test_audio_and_files_count_by_their_size() -> None:
    second_of_audio = base64.b64encode(b"\x00" * 16_000).decode()
    audio = {"type": "input_audio", "input_audio": {"data": second_of_audio, "format": "mp3"}}
    assert media_tokens(ChatMessage("user", "", parts=(audio,))) == 10
    big = "data:application/pdf;base64," + base64.b64encode(b"\x00" * 320_000).decode()
    files = (
        {"type": "file", "file": {"file_data": big}},
        {"type": "file", "file": {"file_id": "file-1"}},
    )
    assert media_tokens(ChatMessage("user", "", parts=files)) == 10_000 + 1_000


def test_text_parts_count_as_the_text_they_join_into() -> None:
    counter = TiktokenCounter("o200k_base")
    text = "hello there, a question"
    parts = ({"type": "text", "text": text}, image("https://x.example/a.png", "low"))
    with_parts = ChatMessage("user", text, parts=parts)
    assert counter.count_message(with_parts) == counter.count_message(ChatMessage.user(text)) + 85
