"""The `calculator` tool: a whitelist evaluator over Python's `ast`, never `eval`.

Grammar: numbers, `+ - * / // % **`, parentheses, unary `+`/`-`, the functions sqrt, abs,
round, min, max, log, exp, sin, cos, tan and the constants pi and e. Semantics are Python's
(ints are exact, `/` is true division, `round` rounds half to even).

Every input is bounded before or while it is evaluated, so hostile input fails in well under
a millisecond instead of burning CPU or memory: the text length, the number of AST nodes, the
nesting depth, the exponent, and the magnitude of every intermediate value (integers up to
1024 bits, floats finite). `9**9**9` is refused from an estimate, without computing it.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from agent_api.domain.errors import ToolFailed
from agent_api.tools.base import ToolContext

Number = int | float

MAX_EXPRESSION_LENGTH = 1000
MAX_NODES = 500
MAX_DEPTH = 200
MAX_EXPONENT = 10_000
MAX_INT_BITS = 1024  # about 1.8e308: the float range, so every int converts to float
MAX_ROUND_DIGITS = 100
_EXACT_FLOAT_INT = 2**53  # larger integral floats are not exact integers: keep them floats

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^ (use ** for powers)",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
# name -> (function, min args, max args)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (round, 1, 2),
    "min": (min, 2, 64),
    "max": (max, 2, 64),
    "log": (math.log, 1, 2),
    "exp": (math.exp, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
}
_SYNTAX_NAMES: dict[type[ast.AST], str] = {
    ast.Compare: "comparisons",
    ast.BoolOp: "and/or",
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.IfExp: "if/else",
}


def evaluate(expression: str) -> Number:
    """The value of `expression`; integral results within 2**53 are ints.

    Raises ToolFailed with a message fit for a user and a model: syntax errors, unsupported
    syntax, unknown names, division by zero, undefined functions (sqrt(-1)), results that are
    too large or not finite, and inputs over the bounds.
    """
    text = expression.strip()
    if not text:
        raise ToolFailed("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ToolFailed(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    tree = _parse(text)
    _check_size(tree)
    value = _eval(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT_INT:
        return int(value)
    return value


def _parse(text: str) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at position {exc.offset}" if exc.offset else ""
        raise ToolFailed(f"invalid expression: {exc.msg}{where}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ToolFailed("invalid expression") from None


def _check_size(tree: ast.Expression) -> None:
    """Counts nodes and measures depth without recursion (the tree may be degenerate)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ToolFailed(f"the expression is too complex (more than {MAX_NODES} elements)")
        if depth > MAX_DEPTH:
            raise ToolFailed(f"the expression is nested more than {MAX_DEPTH} levels deep")
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.expr)
        )


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        return _literal(node.value)
    if isinstance(node, ast.BinOp):
        binary = _BINARY.get(type(node.op))
        if binary is None and not isinstance(node.op, ast.Pow):
            raise ToolFailed(f"unsupported operator {_SYMBOLS.get(type(node.op), '?')}")
        left, right = _eval(node.left), _eval(node.right)
        if binary is None:
            return _power(left, right)
        return _checked(lambda: binary(left, right))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise ToolFailed(f"unsupported operator {_SYMBOLS.get(type(node.op), '?')}")
        operand = _eval(node.operand)
        return _checked(lambda: unary(operand))
    if isinstance(node, ast.Name):
        return _constant(node.id)
    if isinstance(node, ast.Call):
        return _call(node)
    raise ToolFailed(f"unsupported syntax: {_SYNTAX_NAMES.get(type(node), 'not arithmetic')}")


def _literal(value: object) -> Number:
    # bool is an int subclass: `True` is not a number here.
    if type(value) is int or type(value) is float:
        return _bounded(value)
    raise ToolFailed("only numbers are allowed (no text, booleans or complex numbers)")


def _constant(name: str) -> float:
    if name in _CONSTANTS:
        return _CONSTANTS[name]
    if name in _FUNCTIONS:
        raise ToolFailed(f"{name} is a function: call it, e.g. {name}(2)")
    raise ToolFailed(f"unknown name '{name[:40]}' (constants: {', '.join(_CONSTANTS)})")


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolFailed(f"the exponent is larger than {MAX_EXPONENT}")
    # Estimate the size of an integer power instead of computing it: 10000**10000 is slow.
    exact = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
    if exact and exponent > 0 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise ToolFailed("the result is too large")
    if base < 0 and not float(exponent).is_integer():
        raise ToolFailed("a negative number to a fractional power is not a real number")
    return _checked(lambda: base**exponent)


def _call(node: ast.Call) -> Number:
    known = ", ".join(sorted(_FUNCTIONS))
    if not isinstance(node.func, ast.Name):
        raise ToolFailed(f"only these functions can be called: {known}")
    if node.func.id not in _FUNCTIONS:
        raise ToolFailed(f"unknown function '{node.func.id[:40]}' (functions: {known})")
    name = node.func.id
    function, least, most = _FUNCTIONS[name]
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ToolFailed(f"{name} takes plain positional arguments only")
    if not least <= len(node.args) <= most:
        expected = "1 argument" if most == 1 else f"{least} to {most} arguments"
        raise ToolFailed(f"{name} takes {expected} ({len(node.args)} given)")
    args = [_eval(arg) for arg in node.args]
    if name == "round" and len(args) == 2:
        digits = args[1]
        if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
            raise ToolFailed(f"round: digits must be a whole number within ±{MAX_ROUND_DIGITS}")
    try:
        value = function(*args)
    except (ValueError, ZeroDivisionError):
        shown = ", ".join(repr(arg) for arg in args)
        raise ToolFailed(f"{name}({shown[:80]}) is undefined") from None
    except OverflowError:
        raise ToolFailed("the result is too large") from None
    return _bounded(value)


def _checked(compute: Callable[[], Any]) -> Number:
    """Runs one arithmetic step and enforces the magnitude bounds on its result."""
    try:
        value = compute()
    except ZeroDivisionError:
        raise ToolFailed("division by zero") from None
    except OverflowError:
        raise ToolFailed("the result is too large") from None
    return _bounded(value)


def _bounded(value: object) -> Number:
    """`value` when it is a real number within the bounds. Raises ToolFailed otherwise."""
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise ToolFailed("the result is too large")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolFailed("the result is not a finite number (overflow)")
        return value
    raise ToolFailed("the result is not a real number")


class Calculator:
    """The built-in `calculator` tool (name, description and parameter kept from the
    original service so its clients keep working)."""

    name = "calculator"
    description = (
        "Perform mathematical calculations. Supports basic arithmetic (+, -, *, /), "
        "parentheses, and common functions."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "Mathematical expression to evaluate. Example: '(2 + 3) * 4' or "
                "'15 / 3'. Also: // % ** sqrt abs round min max log exp sin cos tan pi e.",
                "minLength": 1,
                "maxLength": MAX_EXPRESSION_LENGTH,
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    }
    requires_approval = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """`{"expression": <as given>, "result": <number>}`. Raises ToolFailed."""
        expression: str = args["expression"]
        return {"expression": expression, "result": evaluate(expression)}
