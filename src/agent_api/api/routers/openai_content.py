"""Content parts of an OpenAI chat message, checked at the edge.

A message's `content` may be a list of parts. Accepted, as OpenAI accepts them:

- `{"type": "text", "text"}` on any message;
- on user messages only: `{"type": "image_url", "image_url": {"url", "detail"?}}` with an
  `https://` URL or a `data:image/<subtype>;base64,<data>` URL and `detail` `auto`, `low` or
  `high`; `{"type": "input_audio", "input_audio": {"data", "format"}}` with base64 data and
  format `wav` or `mp3`; `{"type": "file", "file": {"file_data"?, "file_id"?, "filename"?}}`
  with `file_data` or `file_id`.

Anything else (another type, an unknown key, a plain-http image, bad base64, another audio
format) is an InvalidRequest whose `param` names the part, e.g.
`messages[0].content[1].image_url.url`. The parts that pass go to the model exactly as sent,
so nothing in them is accepted and then ignored.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agent_api.domain.chat import MEDIA_PART_TYPES
from agent_api.domain.errors import InvalidRequest

_DATA_IMAGE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,", re.ASCII)
_DETAILS = ("auto", "low", "high")
_AUDIO_FORMATS = ("wav", "mp3")
_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # part type -> (keys of the part, keys of its object)
    "text": (frozenset({"type", "text"}), frozenset()),
    "image_url": (frozenset({"type", "image_url"}), frozenset({"url", "detail"})),
    "input_audio": (frozenset({"type", "input_audio"}), frozenset({"data", "format"})),
    "file": (frozenset({"type", "file"}), frozenset({"file_data", "file_id", "filename"})),
}


def parse_content(
    content: Sequence[Any], role: str, where: str
) -> tuple[str, tuple[Mapping[str, Any], ...]]:
    """The text of `content` (its text parts joined) and the parts to keep: all of them when
    one is not text, none when all are (the joined text says the same). `where` is the
    content's param (`messages[0].content`). Raises InvalidRequest naming the bad part."""
    texts: list[str] = []
    parts: list[Mapping[str, Any]] = []
    for index, part in enumerate(content):
        param = f"{where}[{index}]"
        kind = _check_part(part, param)
        if kind == "text":
            texts.append(part["text"])
        elif role != "user":
            raise InvalidRequest(
                f"{kind} parts are only accepted in user messages", param=f"{param}.type"
            )
        parts.append(part)
    has_media = any(part["type"] in MEDIA_PART_TYPES for part in parts)
    return "".join(texts), tuple(parts) if has_media else ()


def _check_part(part: Any, param: str) -> str:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise InvalidRequest("a content part is an object with a string `type`", param=param)
    kind: str = part["type"]
    if kind not in _KEYS:
        supported = ", ".join(_KEYS)
        raise InvalidRequest(
            f"content part type '{kind}' is not supported; use one of {supported}",
            param=f"{param}.type",
        )
    part_keys, object_keys = _KEYS[kind]
    _only(part, part_keys, param)
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise InvalidRequest("a text part needs a string `text`", param=f"{param}.text")
        return kind
    inner = part.get(kind)
    if not isinstance(inner, dict):
        raise InvalidRequest(f"a {kind} part needs an object `{kind}`", param=f"{param}.{kind}")
    _only(inner, object_keys, f"{param}.{kind}")
    _CHECKS[kind](inner, f"{param}.{kind}")
    return kind


def _only(value: Mapping[str, Any], allowed: frozenset[str], param: str) -> None:
    for key in value:
        if key not in allowed:
            raise InvalidRequest(f"unknown field '{key}'", param=f"{param}.{key}")


def _check_image(image: Mapping[str, Any], param: str) -> None:
    url = image.get("url")
    if not isinstance(url, str):
        raise InvalidRequest("an image needs a string `url`", param=f"{param}.url")
    data = _DATA_IMAGE.match(url)
    if data:
        _base64(url[data.end() :], f"{param}.url")
    elif not url.startswith("https://") or len(url) == len("https://"):
        raise InvalidRequest(
            "an image url is https:// or data:image/<type>;base64,<data>", param=f"{param}.url"
        )
    detail = image.get("detail", "auto")
    if detail not in _DETAILS:
        raise InvalidRequest(
            f"detail must be one of {', '.join(_DETAILS)}", param=f"{param}.detail"
        )


def _check_audio(audio: Mapping[str, Any], param: str) -> None:
    if audio.get("format") not in _AUDIO_FORMATS:
        raise InvalidRequest(
            f"audio format must be one of {', '.join(_AUDIO_FORMATS)}", param=f"{param}.format"
        )
    data = audio.get("data")
    if not isinstance(data, str):
        raise InvalidRequest("audio needs base64 `data`", param=f"{param}.data")
    _base64(data, f"{param}.data")


def _check_file(file: Mapping[str, Any], param: str) -> None:
    for key in ("file_data", "file_id", "filename"):
        value = file.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRequest(f"`{key}` must be a non-empty string", param=f"{param}.{key}")
    if file.get("file_data") is None and file.get("file_id") is None:
        raise InvalidRequest("a file part needs `file_data` or `file_id`", param=param)


def _base64(data: str, param: str) -> None:
    try:
        decoded = binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidRequest("not valid base64 data", param=param) from None
    if not decoded:
        raise InvalidRequest("empty base64 data", param=param)


_CHECKS = {"image_url": _check_image, "input_audio": _check_audio, "file": _check_file}
