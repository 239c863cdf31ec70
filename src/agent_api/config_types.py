"""The value types of the settings and how each is read from its environment string.

`Duration` (`15m`, `7d`...), `CsvList` (`a,b`) and `ModelBudgets` (`gpt-4o=128000,...`) are
annotated types for fields of `Settings`: a bad value raises ValueError naming the value,
which pydantic reports with the variable's name.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """`15m`, `168h`, `7d`, `30s`, `250ms` or a bare number of seconds -> timedelta.

    Raises ValueError for anything else (including zero and negative values).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(
            f"invalid duration {value!r}: use a number with a unit, e.g. 30s, 15m, 168h, 7d"
        )
    try:
        duration = timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        # timedelta's own errors (e.g. "99999999999999d") would escape pydantic's validation
        # as a raw traceback instead of a message naming the variable.
        raise ValueError(f"invalid duration {value!r}: out of range") from None
    if duration <= timedelta(0):
        raise ValueError(f"invalid duration {value!r}: must be positive")
    return duration


def split_csv(value: Any) -> Any:
    """A comma-separated string -> list of trimmed, non-empty items; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _lowercase(value: Any) -> Any:
    """A string trimmed and in lower case (`INFO` -> `info`); anything else passes through."""
    return value.strip().lower() if isinstance(value, str) else value


_MODEL_NAME = re.compile(r"^[^\s=,]+$")


def parse_model_budgets(value: Any) -> Any:
    """`gpt-4o=128000,llama3=8192` -> {"gpt-4o": 128000, "llama3": 8192}; a dict passes through.

    Raises ValueError naming the bad entry: an item without `=`, an empty or spaced model
    name, a count that is not a positive whole number, a model given twice."""
    if not isinstance(value, str):
        return value
    budgets: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        model, sep, count = (piece.strip() for piece in item.partition("="))
        if not sep or not _MODEL_NAME.match(model):
            raise ValueError(f"invalid entry {item!r}: use model=tokens, e.g. llama3=8192")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"invalid entry {item!r}: tokens must be a positive whole number")
        if model in budgets:
            raise ValueError(f"model {model!r} is given twice")
        budgets[model] = int(count)
    return budgets


# Metadata for `Annotated[Literal[...], Lowercase]`: choices are matched in any case.
Lowercase = BeforeValidator(_lowercase)
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
CsvList = Annotated[list[str], NoDecode, BeforeValidator(split_csv)]
ModelBudgets = Annotated[
    dict[str, Annotated[int, Field(ge=1)]], NoDecode, BeforeValidator(parse_model_budgets)
]
