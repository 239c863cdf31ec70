"""Token counting for context budgets: tiktoken with BPE tables we ship, a byte bound otherwise.

tiktoken downloads its tables the first time an encoding is used; the servers this runs on may
have no route to that host. The two tables current OpenAI models use (`o200k_base`,
`cl100k_base`) therefore ship gzipped in `tokenizer_data/` (2.4 MB) and are checked against the
SHA-256 that tiktoken itself pins for them before use. Nothing here touches the network.

A table is loaded the first time a model that needs it is counted (~2 s of CPU, ~50 MB of
memory per table; callers count in a worker thread), once per process.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from importlib import resources

import tiktoken

from agent_api.application.ports import TokenCounter
from agent_api.domain.chat import ChatMessage, ToolSpec

# Framing the chat format adds around the text, in tokens. OpenAI's own accounting is 3 per
# message (+1 with a name) and 3 to prime the answer; we round up and count a call's
# JSON wrapper too.
MESSAGE_FRAMING = 4
CALL_FRAMING = 8
REQUEST_FRAMING = 3

# For unknown tokenizers: generous allowances for chat templates (role headers, BOS/EOS, a
# SentencePiece prefix space, a tool call's JSON wrapper, a template's own preamble).
ESTIMATE_MESSAGE_FRAMING = 16
ESTIMATE_CALL_FRAMING = 32
ESTIMATE_REQUEST_FRAMING = 64

# tiktoken 0.14's definitions of the two encodings (tiktoken_ext/openai_public.py, MIT), which
# load their tables from the network: the patterns and special tokens are copied here, and
# the tables' hashes are the ones tiktoken pins.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""  # noqa: E501
_TABLES: dict[str, tuple[str, str, dict[str, int]]] = {
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}
SHIPPED_ENCODINGS = frozenset(_TABLES)

_loaded: dict[str, tiktoken.Encoding] = {}
_loading = threading.Lock()


def load_encoding(name: str) -> tiktoken.Encoding:
    """The shipped encoding `name`, loaded once per process. Raises KeyError for an encoding we
    do not ship, RuntimeError when the shipped table does not match its pinned hash."""
    with _loading:
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


def _load(name: str) -> tiktoken.Encoding:
    expected, pattern, special = _TABLES[name]
    packed = resources.files("agent_api.infrastructure").joinpath(
        f"tokenizer_data/{name}.tiktoken.gz"
    )
    data = gzip.decompress(packed.read_bytes())
    if hashlib.sha256(data).hexdigest() != expected:
        raise RuntimeError(f"the shipped {name} table is corrupt (hash mismatch)")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    encoding = tiktoken.Encoding(
        name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special
    )
    # Counting only runs the Rust core, which holds its own copy of the ranks: dropping the
    # Python-side table halves the memory an encoding costs (~37 MB for o200k_base).
    encoding._mergeable_ranks = {}
    return encoding


# Non-text parts are never counted as text (a base64 image is not read as characters):
# - an image at `detail: low` costs 85 tokens (OpenAI's formula); at `high` or `auto` the size
#   decides, which we do not decode, so we take the most GPT-4o's formula can give (85 + 170
#   per 512-px tile of the image scaled to 2048 x 768: 8 tiles), 1445;
# - audio: 10 tokens a second (one per 100 ms), its length taken as if it were 128 kbit/s
#   (16,000 bytes a second: more seconds than a WAV of the same size has, so more tokens);
# - a file: one token per 32 bytes of it, at least 1,000; a file sent by `file_id` (its size
#   unknown here), 1,000.
IMAGE_LOW_TOKENS = 85
IMAGE_HIGH_TOKENS = 85 + 170 * 8
AUDIO_BYTES_PER_TOKEN = 1_600
FILE_BYTES_PER_TOKEN = 32
FILE_MIN_TOKENS = 1_000


def _decoded_size(data: str) -> int:
    """The size in bytes of base64 `data` (a data URL's payload when it is one)."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    return len(data.rstrip("=")) * 3 // 4


def media_tokens(message: ChatMessage) -> int:
    """The estimated tokens of `message`'s images, audio and files (see the constants above)."""
    total = 0
    for part in message.media:
        kind = part.get("type")
        if kind == "image_url":
            detail = (part.get("image_url") or {}).get("detail", "auto")
            total += IMAGE_LOW_TOKENS if detail == "low" else IMAGE_HIGH_TOKENS
        elif kind == "input_audio":
            size = _decoded_size(str((part.get("input_audio") or {}).get("data", "")))
            total += -(-size // AUDIO_BYTES_PER_TOKEN)
        else:
            data = (part.get("file") or {}).get("file_data")
            size = _decoded_size(data) if isinstance(data, str) else 0
            total += max(FILE_MIN_TOKENS, -(-size // FILE_BYTES_PER_TOKEN))
    return total


def _texts(message: ChatMessage) -> tuple[int, list[str]]:
    """The message's framing units (1 + one per tool call) and every text the model reads."""
    texts = [message.content or "", message.name or "", message.tool_call_id or ""]
    for call in message.tool_calls:
        texts += [call.id, call.name, call.arguments]
    return len(message.tool_calls), texts


def _tools_json(tools: Sequence[ToolSpec]) -> str:
    return json.dumps([asdict(tool) for tool in tools], ensure_ascii=False, separators=(",", ":"))


class ByteEstimateCounter:
    """For models whose tokenizer we do not have: one token per UTF-8 byte, plus generous
    framing. Never below the model's real count for the text, because every tokenizer in use
    emits at most one token per byte of input: a byte-level BPE token (GPT, Llama 3, Qwen,
    Mistral Tekken) always covers at least one byte, and a SentencePiece token (Llama 2,
    Gemma, Mistral v1) covers at least one character, with unknown characters falling back to
    one token per byte. What a chat template adds is covered by the framing allowances.
    Costs 3-4x the real count of English text: give such models their real budget."""

    def count_message(self, message: ChatMessage) -> int:
        calls, texts = _texts(message)
        return (
            ESTIMATE_MESSAGE_FRAMING
            + calls * ESTIMATE_CALL_FRAMING
            + sum(len(text.encode(errors="surrogatepass")) for text in texts)
            + media_tokens(message)
        )

    def count_tools(self, tools: Sequence[ToolSpec]) -> int:
        size = len(_tools_json(tools).encode(errors="surrogatepass")) if tools else 0
        return ESTIMATE_REQUEST_FRAMING + size


class TiktokenCounter:
    """Exact token counts of the text with the model's own encoding, plus OpenAI's framing
    rounded up. Counts of large messages are remembered by a digest of their text (the same
    history is counted again by every LLM call of every later turn); the memory is bounded."""

    MEMO_SIZE = 4096
    MEMO_MIN_CHARS = 512  # below this, counting is as cheap as looking the count up

    def __init__(self, encoding_name: str) -> None:
        if encoding_name not in _TABLES:
            raise KeyError(f"encoding {encoding_name} is not shipped")
        self.encoding_name = encoding_name
        self._memo: OrderedDict[bytes, int] = OrderedDict()
        self._memo_lock = threading.Lock()

    def _tokens(self, text: str) -> int:
        return len(load_encoding(self.encoding_name).encode_ordinary(text)) if text else 0

    def _remembered(self, texts: list[str]) -> int:
        if sum(map(len, texts)) < self.MEMO_MIN_CHARS:
            return sum(map(self._tokens, texts))
        digest = hashlib.blake2b(digest_size=16)
        for text in texts:
            encoded = text.encode(errors="surrogatepass")
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
        key = digest.digest()
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        count = sum(map(self._tokens, texts))
        with self._memo_lock:
            self._memo[key] = count
            if len(self._memo) > self.MEMO_SIZE:
                self._memo.popitem(last=False)
        return count

    def count_message(self, message: ChatMessage) -> int:
        calls, texts = _texts(message)
        return (
            MESSAGE_FRAMING + calls * CALL_FRAMING + self._remembered(texts) + media_tokens(message)
        )

    def count_tools(self, tools: Sequence[ToolSpec]) -> int:
        return REQUEST_FRAMING + (self._remembered([_tools_json(tools)]) if tools else 0)


def counter_for_model(model: str) -> TokenCounter:
    """The model's own tokenizer when tiktoken knows the model and we ship its table (GPT-4o,
    GPT-4.1, o-series, GPT-4, GPT-3.5...), else the byte estimate. Counters are shared."""
    try:
        encoding_name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return _BYTE_ESTIMATE
    counter = _COUNTERS.get(encoding_name)
    return counter if counter is not None else _BYTE_ESTIMATE


def load_tables_for(models: Iterable[str]) -> None:
    """Loads the tables of the models' tokenizers now (about 2 s each, once per process), so
    that no request waits for one. Blocking: call it from a worker thread."""
    for model in models:
        counter = counter_for_model(model)
        if isinstance(counter, TiktokenCounter):
            load_encoding(counter.encoding_name)


_BYTE_ESTIMATE = ByteEstimateCounter()
_COUNTERS: dict[str, TokenCounter] = {name: TiktokenCounter(name) for name in SHIPPED_ENCODINGS}
