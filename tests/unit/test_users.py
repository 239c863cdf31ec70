"""The rules on users' identity fields: password policy and email normalisation."""

from __future__ import annotations

import pytest

from agent_api.domain.errors import ValidationFailed
from agent_api.domain.users import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    check_password_policy,
    normalize_email,
)


def test_policy_bounds() -> None:
    assert (PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH) == (8, 1024)


@pytest.mark.parametrize(
    "password",
    ["x" * 8, "x" * 1024, "correct horse battery staple", "pässwörd", "🔑" * 8, "        "],
    ids=["min", "max", "phrase", "accents", "emoji", "spaces"],
)
def test_accepted_passwords(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize(
    "password", ["", "x" * 7, "🔑" * 7, "x" * 1025], ids=["empty", "7", "7-emoji", "1025"]
)
def test_refused_passwords(password: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_password_policy(password)
    assert exc.value.details == [{"field": "password", "message": "length out of range"}]
    assert "8 to 1024" in exc.value.message


def test_the_policy_counts_characters_not_bytes() -> None:
    # Eight 4-byte characters are 32 bytes but only 8 characters: accepted; seven are not.
    check_password_policy("🔑" * 8)
    with pytest.raises(ValidationFailed):
        check_password_policy("🔑" * 7)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada@Example.COM", "ada@example.com"),
        ("  ada@example.com\t\n", "ada@example.com"),
        (" ADA.Lovelace+Tag@Sub.Example.org ", "ada.lovelace+tag@sub.example.org"),
    ],
)
def test_normalize_email(raw: str, normalised: str) -> None:
    assert normalize_email(raw) == normalised


def test_normalize_email_is_idempotent() -> None:
    once = normalize_email("  MiXeD@Case.Example ")
    assert normalize_email(once) == once
