"""What text the stores can hold: refusing it from clients, making it storable from third
parties (`agent_api.domain.text`)."""

from __future__ import annotations

import pytest

from agent_api.domain.text import first_unstorable, storable


def test_storable_replaces_nul_and_lone_surrogates_everywhere() -> None:
    document = {"a\x00": ["x\ud800y", {"deep": "n\x00l"}], "ok": 1, "none": None}
    assert storable(document) == {
        "a\ufffd": ["x\ufffdy", {"deep": "n\ufffdl"}],
        "ok": 1,
        "none": None,
    }
    assert storable("te\x00xt") == "te\ufffdxt"
    assert storable(None) is None


def test_storable_keeps_what_is_fine_and_the_escape_text_itself() -> None:
    fine = {"a": ["b", 2, 3.5, True]}
    assert storable(fine) is fine
    # A backslash followed by "u0000" is six ordinary characters, not a NUL.
    assert storable({"literal": "\\u0000"}) == {"literal": "\\u0000"}
    assert storable('{"y": "\\u0000"}') == '{"y": "\\u0000"}'


def test_storable_reaches_nested_values() -> None:
    deep: object = "x\x00"
    for _ in range(200):
        deep = [deep]
    flat = storable(deep)
    for _ in range(200):
        flat = flat[0]
    assert flat == "x\ufffd"


@pytest.mark.parametrize(
    ("value", "path", "expected"),
    [
        ("fine", "name", None),
        ("n\x00l", "name", "name"),
        ({"a": ["ok", "b\ud800"]}, "arguments", "arguments.a.1"),
        ({"k\x00": "v"}, "arguments", "arguments.k\ufffd"),
        ({"text": "a\x00"}, "", "text"),
        ([{"x": 1}, {"y": "\x00"}], "messages", "messages.1.y"),
    ],
)
def test_first_unstorable_names_the_path(value: object, path: str, expected: str | None) -> None:
    assert first_unstorable(value, path) == expected
