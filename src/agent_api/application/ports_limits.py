"""Ports of the limits shared by every replica: rate-limit windows and concurrent-run slots.

Part of the ports of `agent_api.application.ports`, under the same contract: a store that
cannot be reached raises `ServiceUnavailable` (the caller decides whether to fail open or
closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class WindowState(NamedTuple):
    """One rate-limit window after a hit."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until a refused caller may try again (a slot frees up)."""


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> WindowState:
        """Counts one request of `key` against `limit` per trailing `window_seconds`.

        Atomic: of any number of concurrent hits on a fresh window exactly `limit` are
        allowed; a refused hit is not counted. Raises ServiceUnavailable when the store
        cannot be reached (the caller decides whether to fail open or closed)."""

    async def peek(self, key: str, limit: int, window_seconds: int) -> WindowState:
        """The window of `key` as `hit` would see it, counting nothing: `allowed` is whether
        one more hit would pass. Raises ServiceUnavailable like `hit`."""

    async def aclose(self) -> None: ...


class RunSlots(Protocol):
    """Leases on concurrent agent runs, per holder (a credential, a user), shared by every
    replica. A lease that is not renewed expires: a crashed process frees its slots."""

    async def acquire(
        self, run_id: str, holders: Sequence[tuple[str, int]], lease_seconds: float
    ) -> int | None:
        """Atomically, for every `(holder, limit)`: drops expired leases, and when each holder
        has fewer than `limit` live runs adds `run_id` to all of them, leased for
        `lease_seconds`. Returns None when taken; otherwise the index of the first full holder
        (and nothing is added). Raises ServiceUnavailable."""

    async def renew(self, run_id: str, holders: Sequence[str], lease_seconds: float) -> None:
        """Extends the lease of `run_id` (a lease already expired and dropped stays dropped).
        Raises ServiceUnavailable."""

    async def release(self, run_id: str, holders: Sequence[str]) -> None:
        """Frees the slots of `run_id` (idempotent). Raises ServiceUnavailable."""
