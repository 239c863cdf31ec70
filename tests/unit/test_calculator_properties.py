"""Property tests: on the allowed subset the calculator agrees with Python's own arithmetic,
and on any text at all it answers a finite JSON number or a ToolFailed, nothing else.

The generated expressions keep every intermediate value far inside the calculator's bounds
(leaves within [1e-9, 1e9], at most 10 of them, no exp), so any disagreement is a bug, not a
bound. The bounds themselves are covered by the example tests.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_api.domain.errors import ToolFailed
from agent_api.tools.calculator import evaluate

ORACLE_NAMES: dict[str, Any] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "log": math.log,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "pi": math.pi,
    "e": math.e,
}
PYTHON_FAILURES = (ZeroDivisionError, ValueError, OverflowError, TypeError)

numbers = st.one_of(
    st.integers(0, 100).map(str),
    st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False).map(repr),
    st.just("0.0"),
    st.sampled_from(["pi", "e"]),
)
leaves = st.one_of(
    numbers,
    st.tuples(numbers, st.integers(-2, 3)).map(lambda t: f"{t[0]} ** {t[1]}"),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(
        children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children, st.booleans()
    ).map(lambda t: f"({t[0]} {t[1]} {t[2]})" if t[3] else f"{t[0]} {t[1]} {t[2]}")
    return st.one_of(
        binary,
        st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(
            st.sampled_from(["sqrt", "abs", "round", "log", "sin", "cos", "tan"]), children
        ).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max", "log"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(children, st.integers(-5, 5)).map(lambda t: f"round({t[0]}, {t[1]})"),
    )


expressions = st.recursive(leaves, _extend, max_leaves=10)


def python_value(expression: str) -> Any:
    code = compile(expression, "<expression>", "eval")
    return eval(code, {"__builtins__": {}}, dict(ORACLE_NAMES))


@settings(max_examples=400, deadline=None)
@given(expressions)
def test_agrees_with_python_arithmetic(expression: str) -> None:
    try:
        expected = python_value(expression)
    except PYTHON_FAILURES:
        expected = None
    if expected is None or isinstance(expected, complex) or not math.isfinite(expected):
        try:
            evaluate(expression)
        except ToolFailed:
            return
        raise AssertionError(f"{expression!r} should have failed")
    result = evaluate(expression)
    assert result == expected, expression
    if isinstance(expected, float) and expected.is_integer() and abs(expected) <= 2**53:
        assert type(result) is int  # integral results are JSON integers
    else:
        assert type(result) is type(expected)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789+-*/%().,e_ jpisqrtmaxlog<>&|^~!@[]{}'\"\n", max_size=60))
def test_any_text_gives_a_finite_number_or_a_tool_failure(text: str) -> None:
    try:
        result = evaluate(text)
    except ToolFailed as exc:
        failure = exc
    else:
        assert type(result) in (int, float)
        json.dumps(result, allow_nan=False)  # finite: always valid JSON
        return
    assert failure.message
