"""Ports of accounts and credentials: users, login sessions, API keys, password hashing.

Part of the ports of `agent_api.application.ports`, under the same contract: a dependency
that cannot be reached raises `ServiceUnavailable`; a missing object is `None` (never an
exception) unless stated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from agent_api.domain.api_keys import ApiKey
from agent_api.domain.sessions import Session
from agent_api.domain.users import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises EmailTaken when the (normalised) email exists."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def set_password_hash(self, user_id: UUID, password_hash: str, now: datetime) -> None: ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get_active_with_user(
        self, session_id: UUID, now: datetime
    ) -> tuple[Session, User] | None:
        """The session and its user, or None when it is missing, revoked or expired."""

    async def rotate(
        self, session_id: UUID, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> bool:
        """Atomically replace the current refresh jti `old_jti` by `new_jti`. False when
        `old_jti` is not current (reuse, or a concurrent refresh won) or the session is over."""

    async def revoke(self, session_id: UUID, reason: str, now: datetime) -> None:
        """Idempotent: revoking a revoked session keeps the first revocation."""

    async def revoke_all_for_user(
        self, user_id: UUID, reason: str, now: datetime, *, keep: UUID | None = None
    ) -> int:
        """Revokes every live session of the user except `keep`, in one statement; returns
        how many were revoked. Already revoked sessions keep their first revocation."""


class ApiKeyRepository(Protocol):
    async def get_by_hash_with_user(self, key_hash: str) -> tuple[ApiKey, User] | None: ...

    async def add(self, key: ApiKey) -> None: ...

    async def list_for_user(self, user_id: UUID) -> list[ApiKey]:
        """Every key of the user (revoked ones too), newest first."""

    async def revoke(self, user_id: UUID, key_id: UUID, now: datetime) -> bool:
        """Revokes the user's key; idempotent (keeps the first revocation). False when the
        user has no such key (another user's key counts as missing)."""

    async def revoke_all_for_user(self, user_id: UUID, now: datetime) -> int:
        """Revokes every unrevoked key of the user in one statement; returns how many."""

    async def count_live_for_user(self, user_id: UUID, now: datetime) -> int:
        """How many of the user's keys are neither revoked nor expired at `now`."""

    async def touch_last_used(self, key_id: UUID, now: datetime) -> None:
        """Sets `last_used_at = now` unless it was set less than LAST_USED_RESOLUTION ago;
        cheap to call often (at most one write per key per resolution, across replicas)."""


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, new hash to store when the stored one is outdated, e.g. bcrypt)."""

    async def dummy_verify(self) -> None:
        """Spend the time of one verification (for unknown emails: no enumeration by timing)."""
