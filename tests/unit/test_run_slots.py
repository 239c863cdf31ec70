"""RunSlotService on a fake store: which holders a run counts against, refusals with
Retry-After, idempotent release, fail-open, and the in-memory adapter's lease expiry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_api.application.run_slots import RETRY_AFTER_SECONDS, RunSlotService
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import RateLimited
from agent_api.domain.users import Role, User
from agent_api.infrastructure.run_slots import MemoryRunSlots
from tests.unit.fakes import FakeRunSlots

NOW = datetime(2030, 1, 1, tzinfo=UTC)
USER = User(uuid.uuid4(), "a@example.com", "A", Role.USER, True, "h", NOW, NOW)


def principal(kind: CredentialType) -> Principal:
    return Principal(USER, Credential(type=kind, id=uuid.uuid4()))


class Events:
    def __init__(self) -> None:
        self.rejected: list[str] = []
        self.failed_open = 0

    def reject(self, scope: str) -> None:
        self.rejected.append(scope)

    def fail_open(self) -> None:
        self.failed_open += 1


def service(store: FakeRunSlots, events: Events, **limits: int) -> RunSlotService:
    limits.setdefault("per_credential", 2)
    limits.setdefault("per_user", 3)
    return RunSlotService(
        store,
        lease=timedelta(seconds=60),
        on_reject=events.reject,
        on_fail_open=events.fail_open,
        **limits,
    )


async def test_a_run_counts_against_its_credential_and_its_user() -> None:
    store, events = FakeRunSlots(), Events()
    slots = service(store, events)
    key, session = principal(CredentialType.API_KEY), principal(CredentialType.SESSION)
    held = [await slots.acquire(key), await slots.acquire(key)]
    with pytest.raises(RateLimited) as by_key:
        await slots.acquire(key)
    await slots.acquire(session)
    with pytest.raises(RateLimited) as by_user:
        await slots.acquire(session)
    assert "this API key (at most 2 at once)" in by_key.value.message
    assert "this user (at most 3 at once)" in by_user.value.message
    assert by_key.value.retry_after == RETRY_AFTER_SECONDS
    assert events.rejected == ["runs", "runs"]
    assert set(store.holders) == {
        f"key:{key.credential.id}",
        f"session:{session.credential.id}",
        f"user:{USER.id}",
    }
    await held[0].release()
    await held[0].release()  # idempotent: frees one slot, not two
    await slots.acquire(key)
    with pytest.raises(RateLimited):
        await slots.acquire(key)


async def test_an_unreachable_store_fails_open() -> None:
    store, events = FakeRunSlots(), Events()
    slots = service(store, events, per_credential=1)
    store.down = True
    key = principal(CredentialType.API_KEY)
    first, second = await slots.acquire(key), await slots.acquire(key)
    await first.renew()
    await second.release()
    assert events.failed_open == 2
    store.down = False
    await slots.acquire(key)  # nothing was counted while the store was down


async def test_memory_slots_expire_with_their_lease() -> None:
    slots = MemoryRunSlots()
    assert await slots.acquire("crashed", [("key:a", 1)], 0.05) is None
    assert await slots.acquire("next", [("key:a", 1)], 60) == 0
    await asyncio.sleep(0.1)
    assert await slots.acquire("next", [("key:a", 1)], 60) is None
    await slots.renew("next", ["key:a"], 60)
    await slots.release("next", ["key:a"])
    assert await slots.acquire("again", [("key:a", 1)], 60) is None
