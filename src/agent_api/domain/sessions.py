"""Login sessions: one refresh-token family each, rotated on every refresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
