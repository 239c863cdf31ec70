"""API keys: long-lived credentials with their own permissions and limits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from agent_api.domain.credentials import Credential, CredentialType

KEY_PREFIX = "sk-"
DISPLAY_PREFIX_LENGTH = (
    12  # "sk-" + 9 characters: enough to tell keys apart, useless to an attacker
)


def hash_key(raw_key: str) -> str:
    """Keys are stored and looked up by their SHA-256 (hex); the raw key is never stored."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_key() -> str:
    """`sk-` + 32 random bytes, URL-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    user_id: UUID
    name: str
    prefix: str
    key_hash: str
    created_at: datetime
    allowed_tools: list[str] | None = None
    allowed_models: list[str] | None = None
    rate_limit_per_minute: int | None = None
    rate_limit_per_day: int | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_usable(self, now: datetime) -> bool:
        """False once revoked or past `expires_at`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def credential(self) -> Credential:
        return Credential(
            type=CredentialType.API_KEY,
            id=self.id,
            allowed_tools=None if self.allowed_tools is None else frozenset(self.allowed_tools),
            allowed_models=None if self.allowed_models is None else frozenset(self.allowed_models),
            rate_limit_per_minute=self.rate_limit_per_minute,
            rate_limit_per_day=self.rate_limit_per_day,
            expires_at=self.expires_at,
        )
