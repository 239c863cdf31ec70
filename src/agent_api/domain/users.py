"""Users and the rules on their identity fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from agent_api.domain.errors import ValidationFailed

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024
NAME_MAX_LENGTH = 255
EMAIL_MAX_LENGTH = 255


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    AGENT = "agent"


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively: stored and compared trimmed and lower-cased."""
    return email.strip().lower()


def check_password_policy(password: str) -> None:
    """Raises ValidationFailed unless the length is within the policy's bounds."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise ValidationFailed(
            f"password must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters",
            details=[{"field": "password", "message": "length out of range"}],
        )


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    name: str
    role: Role
    is_active: bool
    password_hash: str
    created_at: datetime
    updated_at: datetime
