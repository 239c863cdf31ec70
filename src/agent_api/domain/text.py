"""Text every store of this server can hold.

Two kinds of character cannot be stored: NUL (PostgreSQL refuses it in text and JSONB) and
lone UTF-16 surrogates (JSON's `\\ud800` escapes decode to them; they cannot be encoded as
UTF-8). Text from clients that holds one is refused where it arrives, naming the field
(`first_unstorable`); text from third parties — the model, tools — is made storable instead
(`storable`), since refusing it would fail work the client did nothing wrong in.
"""

from __future__ import annotations

import json
import re
from typing import Any

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# In JSON text written without ASCII escaping, a NUL is the escape `\u0000` (not itself
# escaped); lone surrogates stay raw characters.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def storable(value: Any) -> Any:
    """`value` (text, or a JSON document) with every NUL and lone surrogate, in strings and in
    object keys, replaced by U+FFFD; the same object when there is none. A document is
    scanned as its JSON text (the form it is stored in), and rewritten only when needed."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return UNSTORABLE.sub(REPLACEMENT, value)
    text = json.dumps(value, ensure_ascii=False)
    if "\\u0000" not in text and not UNSTORABLE.search(text):
        return value
    text = _NUL_ESCAPE.sub(lambda m: m.group(1) + REPLACEMENT, UNSTORABLE.sub(REPLACEMENT, text))
    return json.loads(text)


def first_unstorable(value: Any, path: str) -> str | None:
    """The path of the first string in `value` (list items, dict keys and values, at any
    depth) that holds a character no store can hold, or None. Items are `path.key` /
    `path.index` (without the leading dot when `path` is empty); a key that is itself bad is
    named with its bad characters shown as U+FFFD."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                here = _join(where, str(key))
                if UNSTORABLE.search(here):
                    stack.append((UNSTORABLE.sub(REPLACEMENT, here), key))
                else:
                    stack.append((here, child))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((_join(where, str(i)), c) for i, c in reversed(list(enumerate(item))))
    return None


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part
