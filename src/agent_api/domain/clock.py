"""Time as the services see it: each takes a `Clock` to call for "now" (tests pass a fixed
one) and defaults to `utcnow`, the real clock, always timezone-aware in UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
