"""Tool-call arguments: decoding OpenAI's JSON-string arguments and checking them against a
tool's JSON schema, with errors that name the offending field."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import ValidationError
from jsonschema.protocols import Validator

from agent_api.domain.errors import InvalidArguments
from agent_api.domain.text import first_unstorable

MAX_SHOWN = 80  # characters of a client's value quoted back in a message
MAX_RECORDED_RAW_ARGUMENTS = 10_000  # characters of undecodable arguments kept for the audit


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_arguments(raw: Any) -> dict[str, Any]:
    """The arguments object from a JSON string (OpenAI's format) or an object. An empty
    string means no arguments (some OpenAI-compatible models send it for argument-less tools).

    Raises InvalidArguments for text that is not strict JSON (NaN and Infinity are refused)
    and for JSON that is not an object.
    """
    if isinstance(raw, dict):
        try:
            json.dumps(raw, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise InvalidArguments("arguments must be plain JSON (no NaN or Infinity)") from None
        return raw
    if not isinstance(raw, str):
        raise InvalidArguments("arguments must be a JSON object, or a string holding one")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidArguments(
            f"arguments are not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidArguments(f"arguments are not valid JSON: {exc}"[:200]) from None
    if not isinstance(value, dict):
        raise InvalidArguments(f"arguments must be a JSON object, not {_json_type(value)}")
    return value


def recordable(raw: Any) -> Any:
    """The arguments as the audit keeps them: decoded when possible, else the raw text."""
    try:
        return parse_arguments(raw)
    except InvalidArguments:
        return raw[:MAX_RECORDED_RAW_ARGUMENTS] if isinstance(raw, str) else repr(raw)[:200]


def check_storable(args: dict[str, Any]) -> None:
    """Raises InvalidArguments naming the first key or string value holding a character the
    audit table cannot store (NUL, or a lone surrogate): such a call is refused, not run."""
    field = first_unstorable(args, "")
    if field is not None:
        message = "must not hold NUL characters or lone surrogates"
        raise InvalidArguments(
            f"invalid arguments: {field or '(arguments)'} {message}",
            param=field,
            details=[{"field": field, "message": message}],
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


_TEMPLATES = {
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "exclusiveMinimum": "must be > {}",
    "exclusiveMaximum": "must be < {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "pattern": "must match the pattern {}",
}


def _field(error: ValidationError) -> tuple[str, str]:
    """(dotted field path, message) for one schema violation, without echoing the value
    (which may be long, or secret)."""
    path = ".".join(str(part) for part in error.absolute_path)
    instance, value, kind = error.instance, error.validator_value, str(error.validator)
    if kind == "required" and isinstance(instance, dict) and isinstance(value, list):
        missing = next((name for name in value if name not in instance), "?")
        return ".".join(filter(None, [path, str(missing)])), "is required"
    if kind == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        known = set(schema.get("properties", {}))
        extra = sorted(str(name) for name in instance if name not in known)
        return ".".join(filter(None, [path, extra[0] if extra else "?"])), "is not allowed"
    if kind == "type":
        types = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        message = f"must be of type {' or '.join(str(t) for t in types)}"
    elif kind == "enum" and isinstance(value, list):
        message = f"must be one of {json.dumps(value)[:MAX_SHOWN]}"
    elif kind in _TEMPLATES:
        message = _TEMPLATES[kind].format(str(value)[:MAX_SHOWN])
    else:
        message = error.message[:MAX_SHOWN]
    return path or "(arguments)", message


def check_arguments(validator: Validator, args: dict[str, Any]) -> None:
    """Raises InvalidArguments naming the first offending field (all of them in `details`)."""
    errors = list(validator.iter_errors(args))
    if not errors:
        return
    fields = [_field(error) for error in errors]
    field, message = fields[0]
    raise InvalidArguments(
        f"invalid arguments: {field} {message}",
        param=field,
        details=[{"field": name, "message": text} for name, text in fields],
    )
