"""Token counters: the shipped tiktoken tables give OpenAI's exact counts with no network, and
the byte estimate never counts fewer tokens than a real tokenizer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_api.domain.chat import ChatMessage, ToolCall, ToolSpec
from agent_api.infrastructure.tokenizers import (
    MESSAGE_FRAMING,
    ByteEstimateCounter,
    TiktokenCounter,
    counter_for_model,
    load_encoding,
)

# Token ids tiktoken gives with the tables it downloads itself.
KNOWN = {
    "o200k_base": [24912, 2375],  # "hello world"
    "cl100k_base": [15339, 1917],
}

OFFLINE_CHECK = """
import socket

def refuse(*args, **kwargs):
    raise OSError("network access attempted")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from agent_api.infrastructure.tokenizers import load_encoding
assert load_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
assert load_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
print("ok")
"""


def test_the_shipped_tables_load_with_no_network_and_no_cache(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in {"TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"}
    }
    env |= {"HOME": str(empty), "XDG_CACHE_HOME": str(empty), "TMPDIR": str(empty)}
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
    assert list(empty.iterdir()) == []  # nothing cached or downloaded


def test_known_models_get_their_encoding_and_others_the_estimate() -> None:
    gpt4o = counter_for_model("gpt-4o-mini")
    assert isinstance(gpt4o, TiktokenCounter)
    assert gpt4o.encoding_name == "o200k_base"
    gpt4 = counter_for_model("gpt-4")
    assert isinstance(gpt4, TiktokenCounter)
    assert gpt4.encoding_name == "cl100k_base"
    for other in ("llama3", "demo", "mistral-large", "text-davinci-003"):
        assert isinstance(counter_for_model(other), ByteEstimateCounter), other


def test_a_message_counts_its_text_exactly_plus_framing() -> None:
    counter = TiktokenCounter("o200k_base")
    assert counter.count_message(ChatMessage.user("hello world")) == MESSAGE_FRAMING + 2
    long = ChatMessage.user("hello world " * 200)
    expected = MESSAGE_FRAMING + len(
        load_encoding("o200k_base").encode_ordinary(long.content or "")
    )
    assert counter.count_message(long) == expected
    assert counter.count_message(long) == expected  # remembered, same answer


def test_tool_calls_and_definitions_count() -> None:
    counter = TiktokenCounter("cl100k_base")
    bare = counter.count_message(ChatMessage.assistant())
    call = ChatMessage.assistant(tool_calls=(ToolCall("c1", "calculator", '{"x": 1}'),))
    assert counter.count_message(call) > bare
    spec = ToolSpec("calculator", "adds numbers", {"type": "object"})
    assert counter.count_tools([spec]) > counter.count_tools([])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(sorted(KNOWN)))
def test_the_byte_estimate_never_undercounts_a_real_tokenizer(text: str, encoding: str) -> None:
    real = TiktokenCounter(encoding).count_message(ChatMessage.user(text))
    assert ByteEstimateCounter().count_message(ChatMessage.user(text)) >= real
