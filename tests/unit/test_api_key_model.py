"""ApiKey.issue: the secret, its hash, and the rules on what a key may be created with."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_api.domain.api_keys import (
    DISPLAY_PREFIX_LENGTH,
    LAST_USED_RESOLUTION,
    MAX_LIST_ITEMS,
    ApiKey,
    hash_key,
)
from agent_api.domain.errors import ValidationFailed

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MAX_PER_MINUTE = 100
MAX_PER_DAY = 5000
USER = uuid.uuid4()


def issue(**fields: object) -> tuple[ApiKey, str]:
    fields.setdefault("name", "ci")
    fields.setdefault("max_rate_limit_per_minute", MAX_PER_MINUTE)
    fields.setdefault("max_rate_limit_per_day", MAX_PER_DAY)
    return ApiKey.issue(user_id=USER, now=NOW, **fields)  # type: ignore[arg-type]


def field_of(error: ValidationFailed) -> str:
    return str(error.details[0]["field"])


def test_issue_returns_a_secret_that_is_stored_only_as_its_sha256() -> None:
    key, secret = issue()
    assert secret.startswith("sk-")
    assert len(secret) == 3 + 43  # 32 random bytes, URL-safe base64
    assert key.key_hash == hash_key(secret)
    assert secret not in repr(key)
    assert key.prefix == secret[:DISPLAY_PREFIX_LENGTH]
    assert key.user_id == USER
    assert key.created_at == NOW


def test_every_key_is_different() -> None:
    secrets = {issue()[1] for _ in range(50)}
    assert len(secrets) == 50


def test_lists_keep_their_meaning_none_all_empty_none_and_are_cleaned() -> None:
    key, _ = issue(allowed_tools=None, allowed_models=[])
    assert key.allowed_tools is None
    assert key.allowed_models == []
    assert key.credential().allows_tool("calculator")
    assert not key.credential().allows_model("gpt-4o")
    key, _ = issue(allowed_tools=[" calculator ", "calculator", "*"])
    assert key.allowed_tools == ["calculator", "*"]
    assert key.credential().allows_tool("web_search")


def test_naive_expiry_is_utc_and_must_be_in_the_future() -> None:
    key, _ = issue(expires_at=datetime(2030, 1, 2))
    assert key.expires_at == datetime(2030, 1, 2, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as caught:
        issue(expires_at=NOW)
    assert field_of(caught.value) == "expires_at"
    with pytest.raises(ValidationFailed):
        issue(expires_at=NOW - timedelta(days=1))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"allowed_tools": [""]}, "allowed_tools"),
        ({"allowed_models": ["m" * 101]}, "allowed_models"),
        ({"allowed_tools": [f"t{i}" for i in range(MAX_LIST_ITEMS + 1)]}, "allowed_tools"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": MAX_PER_MINUTE + 1}, "rate_limit_per_minute"),
        ({"rate_limit_per_day": -5}, "rate_limit_per_day"),
        ({"rate_limit_per_day": MAX_PER_DAY + 1}, "rate_limit_per_day"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        issue(**fields)
    assert field_of(caught.value) == field


def test_usability_ends_with_revocation_or_expiry() -> None:
    key, _ = issue(expires_at=NOW + timedelta(hours=1))
    assert key.is_usable(NOW)
    assert not key.is_usable(NOW + timedelta(hours=1))
    revoked = dataclasses.replace(key, revoked_at=NOW)
    assert not revoked.is_usable(NOW)


def test_last_used_is_refreshed_at_most_once_per_resolution() -> None:
    key, _ = issue()
    assert key.needs_touch(NOW)
    touched = dataclasses.replace(key, last_used_at=NOW)
    assert not touched.needs_touch(NOW + LAST_USED_RESOLUTION - timedelta(seconds=1))
    assert touched.needs_touch(NOW + LAST_USED_RESOLUTION)


def test_credential_carries_the_keys_permissions_and_limits() -> None:
    key, _ = issue(
        allowed_tools=["calculator"],
        rate_limit_per_minute=5,
        rate_limit_per_day=50,
        expires_at=NOW + timedelta(days=1),
    )
    credential = key.credential()
    assert credential.id == key.id
    assert not credential.is_session
    assert credential.allowed_tools == frozenset({"calculator"})
    assert (credential.rate_limit_per_minute, credential.rate_limit_per_day) == (5, 50)
    assert credential.expires_at == key.expires_at
