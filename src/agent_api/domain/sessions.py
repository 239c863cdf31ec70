"""Login sessions: one refresh-token family each, rotated on every refresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Session:
    """A refresh-token family. Only the refresh token whose jti is `refresh_jti` is current;
    presenting an older one is reuse and revokes the whole session."""

    id: UUID
    user_id: UUID
    refresh_jti: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def deadline(self, max_age: timedelta) -> datetime:
        """The absolute end of the session: no refresh extends it past this instant."""
        return self.created_at + max_age

    def is_past_max_age(self, now: datetime, max_age: timedelta) -> bool:
        """True once the session has lived `max_age` (sessions opened before a lower
        SESSION_MAX_AGE was configured may still have a later `expires_at`)."""
        return now >= self.deadline(max_age)
