"""API keys: long-lived credentials with their own permissions and limits.

A key is `sk-` + 32 random bytes. Only its SHA-256 is stored and looked up; the raw key exists
once, in the answer to its creation. Keys are listed by a short display prefix.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from agent_api.domain.credentials import Credential, CredentialType
from agent_api.domain.errors import ValidationFailed

KEY_PREFIX = "sk-"
DISPLAY_PREFIX_LENGTH = (
    12  # "sk-" + 9 characters: enough to tell keys apart, useless to an attacker
)
NAME_MAX_LENGTH = 255
MAX_LIST_ITEMS = 100
LIST_ITEM_MAX_LENGTH = 100
# `last_used_at` is a hint for humans ("used 3 minutes ago"), so it is written at most this
# often per key instead of once per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_key(raw_key: str) -> str:
    """Keys are stored and looked up by their SHA-256 (hex); the raw key is never stored."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_key() -> str:
    """`sk-` + 32 random bytes, URL-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _problem(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def _name_list(field: str, values: Iterable[str] | None) -> list[str] | None:
    """None stays None (= everything); items are trimmed and de-duplicated, order kept."""
    if values is None:
        return None
    items: list[str] = []
    for raw in values:
        item = raw.strip()
        if not 1 <= len(item) <= LIST_ITEM_MAX_LENGTH:
            raise _problem(field, f"names must be 1 to {LIST_ITEM_MAX_LENGTH} characters")
        if item not in items:
            items.append(item)
    if len(items) > MAX_LIST_ITEMS:
        raise _problem(field, f"at most {MAX_LIST_ITEMS} names")
    return items


def _limit(field: str, value: int | None, maximum: int | None) -> int | None:
    if value is None:
        return None
    if maximum is not None and not 1 <= value <= maximum:
        raise _problem(field, f"must be between 1 and {maximum} (the server's maximum)")
    if value < 1:
        raise _problem(field, "must be at least 1")
    return value


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
    can_approve: bool = False

    # Long by its keyword list and its contract; the body is checks, then one constructor.
    @classmethod
    def issue(
        cls,
        *,
        user_id: UUID,
        name: str,
        now: datetime,
        allowed_tools: Iterable[str] | None = None,
        allowed_models: Iterable[str] | None = None,
        expires_at: datetime | None = None,
        rate_limit_per_minute: int | None = None,
        rate_limit_per_day: int | None = None,
        can_approve: bool = False,
        max_rate_limit_per_minute: int | None = None,
        max_rate_limit_per_day: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its raw secret (to show once, never to store).

        `allowed_*`: None = everything, [] = nothing, ["*"] = everything. `can_approve` lets
        the key decide approvals (never the default). A naive `expires_at` is taken as UTC.
        The limits must be at least 1 and at most the operator's `max_rate_limit_*` (None: no
        maximum). Raises ValidationFailed (with field `details`) for an empty or too long
        name, bad list items, an `expires_at` not in the future, or limits out of bounds.
        """
        clean_name = name.strip()
        if not 1 <= len(clean_name) <= NAME_MAX_LENGTH:
            raise _problem("name", f"must be 1 to {NAME_MAX_LENGTH} characters")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=UTC)
            if expires_at <= now:
                raise _problem("expires_at", "must be in the future")
        raw = generate_key()
        key = cls(
            id=uuid.uuid4(),
            user_id=user_id,
            name=clean_name,
            prefix=raw[:DISPLAY_PREFIX_LENGTH],
            key_hash=hash_key(raw),
            created_at=now,
            allowed_tools=_name_list("allowed_tools", allowed_tools),
            allowed_models=_name_list("allowed_models", allowed_models),
            rate_limit_per_minute=_limit(
                "rate_limit_per_minute", rate_limit_per_minute, max_rate_limit_per_minute
            ),
            rate_limit_per_day=_limit(
                "rate_limit_per_day", rate_limit_per_day, max_rate_limit_per_day
            ),
            expires_at=expires_at,
            can_approve=can_approve,
        )
        return key, raw

    def is_usable(self, now: datetime) -> bool:
        """False once revoked or past `expires_at`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def needs_touch(self, now: datetime) -> bool:
        """True when `last_used_at` is older than LAST_USED_RESOLUTION (or was never set)."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION

    def credential(self) -> Credential:
        return Credential(
            type=CredentialType.API_KEY,
            id=self.id,
            allowed_tools=None if self.allowed_tools is None else frozenset(self.allowed_tools),
            allowed_models=None if self.allowed_models is None else frozenset(self.allowed_models),
            rate_limit_per_minute=self.rate_limit_per_minute,
            rate_limit_per_day=self.rate_limit_per_day,
            expires_at=self.expires_at,
            can_approve=self.can_approve,
        )
