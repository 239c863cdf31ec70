"""The cap on concurrent agent runs, per credential and per user, across replicas.

Every run (a conversation created, a message sent, an approval resumed, a chat completion,
streamed or not) takes a slot before anything is written, renews its lease while it lives,
and releases it when it ends however it ends. A crashed process stops renewing: its slots
free themselves when their lease runs out. An API key's runs count against the key, a
session's against that session; all of them against the user. When the store is unreachable
the cap **fails open** (the run proceeds, counted by `on_fail_open` and logged).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import anyio
import structlog

from agent_api.application.ports_limits import RunSlots
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import RateLimited, ServiceUnavailable

log = structlog.get_logger("agent_api.run_slots")

# A refused run may be retried this many seconds later: runs last seconds, and a slot frees
# the moment one ends.
RETRY_AFTER_SECONDS = 2


class RunSlot:
    """A run's claim on its slots. `renew` and `release` never raise (a store error is logged:
    an unrenewed lease only frees the slot early, an unreleased one frees it at expiry)."""

    def __init__(
        self, slots: RunSlots | None, run_id: str, holders: list[str], lease: timedelta
    ) -> None:
        self._slots = slots
        self._run_id = run_id
        self._holders = holders
        self._lease = lease.total_seconds()
        self._released = False

    async def renew(self) -> None:
        if self._slots is None or self._released:
            return
        try:
            await self._slots.renew(self._run_id, self._holders, self._lease)
        except ServiceUnavailable:
            log.warning("run slot not renewed: store unavailable")

    async def release(self) -> None:
        """Idempotent; completes even when the caller is being cancelled."""
        if self._slots is None or self._released:
            return
        self._released = True
        with anyio.CancelScope(shield=True):
            try:
                await self._slots.release(self._run_id, self._holders)
            except ServiceUnavailable:
                log.warning("run slot not released: store unavailable (its lease will expire)")


class RunSlotService:
    def __init__(
        self,
        slots: RunSlots,
        *,
        enabled: bool = True,
        per_credential: int,
        per_user: int,
        lease: timedelta,
        on_reject: Callable[[str], None] = lambda scope: None,
        on_fail_open: Callable[[], None] = lambda: None,
    ) -> None:
        self._slots = slots
        self._enabled = enabled
        self._per_credential = per_credential
        self._per_user = per_user
        self._lease = lease
        self._on_reject = on_reject
        self._on_fail_open = on_fail_open

    async def acquire(self, principal: Principal) -> RunSlot:
        """A slot for one run of `principal`. Raises RateLimited (retry soon) when the
        credential or the user already has its maximum of runs in progress."""
        if not self._enabled:
            return RunSlot(None, "", [], self._lease)
        credential = principal.credential
        kind = "session" if credential.is_session else "key"
        holders = [
            (f"{kind}:{credential.id}", self._per_credential),
            (f"user:{principal.user.id}", self._per_user),
        ]
        run_id = uuid.uuid4().hex
        try:
            full = await self._slots.acquire(run_id, holders, self._lease.total_seconds())
        except ServiceUnavailable:
            log.warning("run slot store unavailable: run not capped")
            self._on_fail_open()
            return RunSlot(None, run_id, [], self._lease)
        if full is not None:
            self._on_reject("runs")
            whose = (
                "this user"
                if full == 1
                else f"this {'session' if kind == 'session' else 'API key'}"
            )
            limit = holders[full][1]
            raise RateLimited(
                f"too many runs in progress for {whose} (at most {limit} at once)",
                retry_after=RETRY_AFTER_SECONDS,
            )
        return RunSlot(self._slots, run_id, [holder for holder, _ in holders], self._lease)
