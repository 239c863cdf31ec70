"""Ports: one Protocol per external system. Adapters live in `agent_api.infrastructure`;
hand-written fakes for unit tests live in `tests/`.

Contract shared by every port: a dependency that cannot be reached raises
`ServiceUnavailable`; a missing object is `None` (never an exception) unless stated.
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


class ApiKeyRepository(Protocol):
    async def get_by_hash_with_user(self, key_hash: str) -> tuple[ApiKey, User] | None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, new hash to store when the stored one is outdated, e.g. bcrypt)."""

    async def dummy_verify(self) -> None:
        """Spend the time of one verification (for unknown emails: no enumeration by timing)."""
