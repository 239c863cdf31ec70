"""The calculator: grammar, Python semantics, JSON-friendly results, and refusal of hostile
input (each refusal is a ToolFailed with a message a user can act on)."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from agent_api.domain.errors import ToolFailed
from agent_api.tools.base import ToolContext
from agent_api.tools.calculator import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_NODES,
    Calculator,
    evaluate,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1337 * 42", 56154),
        ("(2 + 3) * 4", 20),
        ("15 / 3", 5),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-2 ** 2", -4),
        ("2 ** 3 ** 2", 512),
        ("+-+3", -3),
        ("1e3 + .5", 1000.5),
        ("1_000 * 3", 3000),
        ("sqrt(16)", 4),
        ("sqrt(2)", math.sqrt(2)),
        ("abs(-3.5)", 3.5),
        ("round(2.5)", 2),
        ("round(3.14159, 2)", 3.14),
        ("min(3, 1, 2)", 1),
        ("max(3, 1.5)", 3),
        ("log(e)", 1),
        ("log(8, 2)", 3),
        ("exp(0)", 1),
        ("sin(0) + cos(0)", 1),
        ("tan(pi / 4)", math.tan(math.pi / 4)),
        ("pi", math.pi),
        ("10 ** 20", 10**20),
        ("  1 + 1  ", 2),
    ],
)
def test_evaluates_python_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression", ["1337 * 42", "10 / 2", "2.5 * 4", "sqrt(16)", "-0.0"])
def test_integral_results_are_json_integers(expression: str) -> None:
    result = evaluate(expression)
    assert type(result) is int
    assert "." not in json.dumps(result)


def test_huge_integral_floats_stay_floats() -> None:
    # 1e300 is integral but not an exact integer: printing 301 digits would be a lie.
    assert evaluate("1e300") == 1e300
    assert type(evaluate("1e300")) is float


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("sqrt(-1)", "sqrt(-1) is undefined"),
        ("log(0)", "log(0) is undefined"),
        ("log(8, 1)", "log(8, 1) is undefined"),
        ("1e308 * 10", "not a finite number"),
        ("10.0 ** 400", "too large"),
        ("exp(1000)", "too large"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("2 +", "invalid expression"),
        ("(1 + 2", "invalid expression"),
        ("", "empty"),
        ("   ", "empty"),
        ("2 ^ 3", "use ** for powers"),
        ("1 < 2", "comparisons"),
        ("1 and 2", "and/or"),
        ("x + 1", "unknown name 'x'"),
        ("sqrt", "sqrt is a function"),
        ("foo(1)", "unknown function 'foo'"),
        ("'text'", "only numbers"),
        ("True + 1", "only numbers"),
        ("2j", "only numbers"),
        ("abs(1, 2)", "abs takes 1 argument (2 given)"),
        ("max(1)", "max takes 2 to 64 arguments (1 given)"),
        ("sin(x=1)", "positional arguments only"),
        ("round(1.5, 0.5)", "digits must be a whole number"),
    ],
)
def test_errors_are_tool_failures_with_useful_messages(expression: str, message: str) -> None:
    with pytest.raises(ToolFailed) as caught:
        evaluate(expression)
    assert message in caught.value.message
    assert caught.value.code == "TOOL_FAILED"


HOSTILE = {
    "tower of powers": "9**9**9",
    "taller tower": "9**9**9**9",
    "big exponent": "2 ** 100000",
    "exponent just over the estimate": "3 ** 700",
    "shift": "(1<<10**9)",
    "import": "__import__('os').system('true')",
    "attribute escape": "(1).__class__.__bases__",
    "subscript": "[1][0]",
    "lambda": "(lambda: 1)()",
    "comprehension": "[x for x in range(10**9)]",
    "walrus": "(x := 1)",
    "unary chain": "-" * (MAX_EXPRESSION_LENGTH - 1) + "1",
    "too deep for the parser": "(" * 400 + "1" + ")" * 400,
    "long sum": "+".join(["1"] * 400),
    "100 kB string": "1" * 100_000,
    "1000-digit literal": "9" * 999,
    "huge product": "*".join(["99999999"] * 120),
    "round to huge digits": "round(1, 10**50)",
    "factorial-like": "max(" + ",".join(["10**300"] * 60) + ") * 10**300",
    "null byte": "1 + \x00",
}


@pytest.mark.parametrize("expression", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_refused(expression: str) -> None:
    with pytest.raises(ToolFailed):
        evaluate(expression)


def test_bounds_are_the_documented_ones() -> None:
    with pytest.raises(ToolFailed, match="longer than"):
        evaluate("1+" * (MAX_EXPRESSION_LENGTH // 2) + "1")
    with pytest.raises(ToolFailed, match=f"more than {MAX_NODES} elements"):
        evaluate("max(" + ",".join(["-1"] * 330) + ")")
    with pytest.raises(ToolFailed, match=f"more than {MAX_DEPTH} levels"):
        evaluate("-" * (MAX_DEPTH + 5) + "1")
    # Just inside the bounds still works; parentheses alone add no depth.
    assert evaluate("(" * 199 + "1" + ")" * 199) == 1
    assert evaluate("-" * (MAX_DEPTH - 2) + "1") == 1
    assert evaluate("2 ** 1000") == 2**1000


async def test_tool_echoes_the_expression() -> None:
    ctx = ToolContext(user_id=uuid.uuid4(), api_key_id=None, tool_call_id="call_1")
    result = await Calculator().run({"expression": "1337 * 42"}, ctx)
    assert result == {"expression": "1337 * 42", "result": 56154}
    assert json.dumps(result) == '{"expression": "1337 * 42", "result": 56154}'
