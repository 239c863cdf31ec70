"""Credential ACL semantics (None = everything, [] = nothing, "*" = everything), the
conversion of API keys to credentials, and session/key lifetimes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_api.domain.api_keys import (
    DISPLAY_PREFIX_LENGTH,
    ApiKey,
    generate_key,
    hash_key,
    looks_like_api_key,
)
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import ModelForbidden, ToolForbidden
from agent_api.domain.sessions import Session
from agent_api.domain.users import Role, User

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOOLS = ["web_search", "calculator", "weather"]
MODELS = ["gpt-4o", "gpt-4o-mini", "demo"]


def credential(
    tools: frozenset[str] | None = None, models: frozenset[str] | None = None
) -> Credential:
    return Credential(
        type=CredentialType.API_KEY, id=uuid.uuid4(), allowed_tools=tools, allowed_models=models
    )


def test_none_allows_everything() -> None:
    c = credential(None, None)
    assert c.allows_tool("anything")
    assert c.allows_model("anything")
    assert c.usable_tools(TOOLS) == sorted(TOOLS)
    assert c.usable_models(MODELS) == MODELS
    c.require_tool("calculator")
    c.require_model("gpt-4o")


def test_empty_allows_nothing() -> None:
    c = credential(frozenset(), frozenset())
    assert not c.allows_tool("calculator")
    assert not c.allows_model("gpt-4o")
    assert c.usable_tools(TOOLS) == []
    assert c.usable_models(MODELS) == []
    with pytest.raises(ToolForbidden):
        c.require_tool("calculator")
    with pytest.raises(ModelForbidden):
        c.require_model("gpt-4o")


def test_wildcard_allows_everything() -> None:
    c = credential(frozenset({"*"}), frozenset({"*"}))
    assert c.usable_tools(TOOLS) == sorted(TOOLS)
    assert c.usable_models(MODELS) == MODELS
    c.require_tool("never-heard-of-it")
    c.require_model("never-heard-of-it")


def test_a_list_allows_exactly_its_names() -> None:
    c = credential(frozenset({"calculator"}), frozenset({"gpt-4o-mini"}))
    assert c.usable_tools(TOOLS) == ["calculator"]
    assert c.usable_models(MODELS) == ["gpt-4o-mini"]
    c.require_tool("calculator")
    with pytest.raises(ToolForbidden, match="'web_search'"):
        c.require_tool("web_search")
    with pytest.raises(ModelForbidden, match="'gpt-4o'"):
        c.require_model("gpt-4o")


def test_names_are_matched_exactly() -> None:
    c = credential(frozenset({"calculator"}), frozenset({"gpt-4o"}))
    assert not c.allows_tool("Calculator")
    assert not c.allows_tool("calc")
    assert not c.allows_model("gpt-4o-mini")


def test_usable_tools_are_sorted_and_models_keep_their_order() -> None:
    c = credential(frozenset({"weather", "calculator"}), frozenset({"demo", "gpt-4o"}))
    assert c.usable_tools(TOOLS) == ["calculator", "weather"]
    assert c.usable_models(MODELS) == ["gpt-4o", "demo"]


def api_key(**changes: object) -> ApiKey:
    raw = generate_key()
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "name": "ci",
        "prefix": raw[:DISPLAY_PREFIX_LENGTH],
        "key_hash": hash_key(raw),
        "created_at": NOW,
        **changes,
    }
    return ApiKey(**fields)  # type: ignore[arg-type]


def test_api_key_lists_become_the_credential_sets() -> None:
    key = api_key(
        allowed_tools=["calculator"],
        allowed_models=[],
        rate_limit_per_minute=5,
        rate_limit_per_day=50,
        expires_at=NOW + timedelta(days=1),
    )
    c = key.credential()
    assert c.type is CredentialType.API_KEY
    assert c.id == key.id
    assert c.allowed_tools == frozenset({"calculator"})
    assert c.allowed_models == frozenset()  # [] stays "nothing", not "everything"
    assert (c.rate_limit_per_minute, c.rate_limit_per_day) == (5, 50)
    assert c.expires_at == key.expires_at
    assert not c.is_session


def test_api_key_without_lists_is_unrestricted() -> None:
    c = api_key().credential()
    assert c.allowed_tools is None
    assert c.allowed_models is None
    assert c.allows_tool("calculator")
    assert c.allows_model("gpt-4o")


def test_api_key_usability() -> None:
    assert api_key().is_usable(NOW)
    assert api_key(expires_at=NOW + timedelta(seconds=1)).is_usable(NOW)
    assert not api_key(expires_at=NOW).is_usable(NOW)
    assert not api_key(revoked_at=NOW - timedelta(days=1)).is_usable(NOW)


def test_generated_keys() -> None:
    raw = generate_key()
    assert looks_like_api_key(raw)
    assert len(raw) == 3 + 43
    assert generate_key() != raw
    assert hash_key(raw) == hash_key(raw) != hash_key(generate_key())
    assert len(hash_key(raw)) == 64
    assert raw not in hash_key(raw)
    assert not looks_like_api_key("eyJhbGciOiJIUzI1NiJ9.e30.x")


def test_session_activity() -> None:
    session = Session(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        refresh_jti="j",
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    assert session.is_active(NOW)
    assert not session.is_active(NOW + timedelta(days=7))
    assert not dataclasses.replace(session, revoked_at=NOW).is_active(NOW)


def test_principal_api_key_id() -> None:
    user = User(
        id=uuid.uuid4(),
        email="ada@example.com",
        name="Ada",
        role=Role.USER,
        is_active=True,
        password_hash="x",
        created_at=NOW,
        updated_at=NOW,
    )
    key_credential = api_key(user_id=user.id).credential()
    assert Principal(user, key_credential).api_key_id == key_credential.id
    session_credential = Credential(type=CredentialType.SESSION, id=uuid.uuid4())
    assert session_credential.is_session
    assert Principal(user, session_credential).api_key_id is None
