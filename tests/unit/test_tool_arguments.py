"""Decoding tool-call arguments and checking them against a schema: every refusal is
InvalidArguments (400) naming the field, never a crash, never an echo of the value."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agent_api.domain.errors import InvalidArguments
from agent_api.tools.arguments import check_arguments, parse_arguments


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"expression": "1+1"}', {"expression": "1+1"}),
        ({"expression": "1+1"}, {"expression": "1+1"}),
        ("", {}),
        ("  ", {}),
        ('{"nested": {"a": [1, 2.5, null, true]}}', {"nested": {"a": [1, 2.5, None, True]}}),
    ],
)
def test_decodes_objects(raw: Any, expected: dict[str, Any]) -> None:
    assert parse_arguments(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON: Expecting property name"),
        ("nope", "not valid JSON: Expecting value (line 1 column 1)"),
        ('{"x": NaN}', "NaN is not valid JSON"),
        ('{"x": Infinity}', "Infinity is not valid JSON"),
        ("null", "must be a JSON object, not null"),
        ("[1]", "not an array"),
        ('"text"', "not a string"),
        ("3", "not a number"),
        ("true", "not a boolean"),
        ("[" * 100_000, "not valid JSON"),
        (["a", "list"], "must be a JSON object, or a string holding one"),
        (42, "must be a JSON object, or a string holding one"),
        ({"x": float("nan")}, "no NaN or Infinity"),
    ],
)
def test_refuses_everything_else(raw: Any, message: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_arguments(raw)
    assert message in caught.value.message
    assert caught.value.code == "INVALID_ARGUMENTS"


SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 10, "pattern": "\\S"},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "mode": {"enum": ["fast", "slow"]},
        "filter": {
            "type": "object",
            "properties": {"lang": {"type": ["string", "null"]}},
            "required": ["lang"],
        },
    },
    "required": ["query"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({}, "query", "is required"),
        ({"query": 5}, "query", "must be of type string"),
        ({"query": ""}, "query", "must be at least 1 characters long"),
        ({"query": "x" * 500}, "query", "must be at most 10 characters long"),
        ({"query": "   "}, "query", "must match the pattern \\S"),
        ({"query": "a", "count": 0}, "count", "must be >= 1"),
        ({"query": "a", "count": 11}, "count", "must be <= 10"),
        ({"query": "a", "count": 1.5}, "count", "must be of type integer"),
        ({"query": "a", "mode": "warp"}, "mode", 'must be one of ["fast", "slow"]'),
        ({"query": "a", "colour": "red"}, "colour", "is not allowed"),
        ({"query": "a", "filter": {}}, "filter.lang", "is required"),
        ({"query": "a", "filter": {"lang": 1}}, "filter.lang", "must be of type string or null"),
    ],
)
def test_schema_violations_name_the_field(args: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        check_arguments(Draft202012Validator(SCHEMA), args)
    assert caught.value.param == field
    assert caught.value.message == f"invalid arguments: {field} {message}"
    assert {"field": field, "message": message} in caught.value.details
    assert "x" * 11 not in caught.value.message


def test_every_violation_is_listed_in_details() -> None:
    with pytest.raises(InvalidArguments) as caught:
        check_arguments(Draft202012Validator(SCHEMA), {"count": 0, "extra": 1})
    fields = {item["field"] for item in caught.value.details}
    assert fields == {"query", "count", "extra"}


def test_valid_arguments_pass() -> None:
    check_arguments(Draft202012Validator(SCHEMA), {"query": "a", "count": 3, "mode": "fast"})
