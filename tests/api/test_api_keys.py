"""API keys over HTTP: create (secret once), list, revoke, what a key may do, and every
validation path."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_api.domain.api_keys import hash_key
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.unit.fakes import FakeClock, FakeHasher


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path)
    async with running_app(settings, hasher=FakeHasher(), clock=clock) as client:
        yield client


async def session_token(client: httpx.AsyncClient, email: str = "ada@example.com") -> str:
    token: str = (await register_and_login(client, email=email))["access_token"]
    return token


async def create_key(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    body.setdefault("name", "ci-bot")
    return await client.post("/v1/api-keys", json=body, headers=bearer(token))


async def new_key(client: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    response = await create_key(client, token, **body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["success"] is False
    return str(body["error"]["code"])


async def test_create_returns_the_secret_once_and_lists_by_prefix(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = await session_token(api)
    created = await new_key(
        api,
        token,
        name="  ci-bot ",
        allowed_tools=["calculator"],
        allowed_models=[],
        expires_at="2099-01-01T00:00:00Z",
        rate_limit_per_minute=30,
        rate_limit_per_day=500,
    )
    secret = created["key"]
    assert secret.startswith("sk-")
    key = created["api_key"]
    assert key["name"] == "ci-bot"
    assert secret.startswith(key["prefix"])
    assert len(key["prefix"]) < len(secret) // 2
    assert key["allowed_tools"] == ["calculator"]
    assert key["allowed_models"] == []
    assert key["expires_at"].startswith("2099-01-01T00:00:00")
    assert (key["rate_limit_per_minute"], key["rate_limit_per_day"]) == (30, 500)
    assert key["last_used_at"] is None
    assert key["revoked_at"] is None

    listing = await api.get("/v1/api-keys", headers=bearer(token))
    assert listing.status_code == 200
    assert listing.json()["data"]["api_keys"] == [key]
    assert secret not in listing.text

    # Only the SHA-256 is stored: no column of the table holds the secret.
    with sqlite3.connect(tmp_path / "test.db") as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
        (stored_hash,) = conn.execute("SELECT key_hash FROM api_keys").fetchone()
    assert stored_hash == hash_key(secret)
    assert not any(secret in str(value) for row in rows for value in row)


async def test_a_key_authenticates_and_me_describes_it(api: httpx.AsyncClient) -> None:
    token = await session_token(api)
    created = await new_key(
        api,
        token,
        allowed_tools=["web_search", "calculator"],
        allowed_models="*",
        rate_limit_per_minute=42,
        expires_at="2099-06-01T12:00:00",
    )
    response = await api.get("/v1/auth/me", headers=bearer(created["key"]))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user"]["email"] == "ada@example.com"
    assert data["credential"] == {
        "type": "api_key",
        "id": created["api_key"]["id"],
        "allowed_tools": ["calculator", "web_search"],
        "allowed_models": ["*"],
        "rate_limit_per_minute": 42,
        "rate_limit_per_day": 10_000,  # the server default
        "expires_at": "2099-06-01T12:00:00Z",
        "can_approve": False,
    }


async def test_absent_lists_mean_everything(api: httpx.AsyncClient) -> None:
    token = await session_token(api)
    created = await new_key(api, token)
    assert created["api_key"]["allowed_tools"] is None
    me = (await api.get("/v1/auth/me", headers=bearer(created["key"]))).json()["data"]
    assert me["credential"]["allowed_tools"] is None
    assert me["credential"]["allowed_models"] is None
    assert me["credential"]["rate_limit_per_minute"] == 60


async def test_api_keys_may_not_manage_keys(api: httpx.AsyncClient) -> None:
    token = await session_token(api)
    created = await new_key(api, token)
    key_headers = bearer(created["key"])
    key_id = created["api_key"]["id"]
    refused = [
        await api.post("/v1/api-keys", json={"name": "escalate"}, headers=key_headers),
        await api.get("/v1/api-keys", headers=key_headers),
        await api.delete(f"/v1/api-keys/{key_id}", headers=key_headers),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert {error_code(r) for r in refused} == {"FORBIDDEN"}
    assert (await api.get("/v1/auth/me", headers=key_headers)).status_code == 200


async def test_no_credential_is_401(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/api-keys")
    assert response.status_code == 401
    response = await api.get("/v1/api-keys", headers=bearer("sk-not-a-real-key"))
    assert (response.status_code, error_code(response)) == (401, "INVALID_TOKEN")


async def test_revocation_takes_effect_on_the_next_request(api: httpx.AsyncClient) -> None:
    token = await session_token(api)
    created = await new_key(api, token)
    key_id = created["api_key"]["id"]
    assert (await api.get("/v1/auth/me", headers=bearer(created["key"]))).status_code == 200
    response = await api.delete(f"/v1/api-keys/{key_id}", headers=bearer(token))
    assert response.status_code == 204
    assert response.content == b""
    response = await api.get("/v1/auth/me", headers=bearer(created["key"]))
    assert (response.status_code, error_code(response)) == (401, "INVALID_TOKEN")
    # Revoking again is a no-op; the listing shows when it was revoked.
    assert (await api.delete(f"/v1/api-keys/{key_id}", headers=bearer(token))).status_code == 204
    (listed,) = (await api.get("/v1/api-keys", headers=bearer(token))).json()["data"]["api_keys"]
    assert listed["revoked_at"] is not None


async def test_expiry_takes_effect_on_the_next_request(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    token = await session_token(api)
    expires = clock() + timedelta(minutes=10)
    created = await new_key(api, token, expires_at=expires.isoformat())
    assert (await api.get("/v1/auth/me", headers=bearer(created["key"]))).status_code == 200
    clock.advance(timedelta(minutes=10))
    response = await api.get("/v1/auth/me", headers=bearer(created["key"]))
    assert (response.status_code, error_code(response)) == (401, "INVALID_TOKEN")


async def test_another_users_key_is_not_found(api: httpx.AsyncClient) -> None:
    ada = await session_token(api, "ada@example.com")
    bob = await session_token(api, "bob@example.com")
    adas = await new_key(api, ada)
    response = await api.delete(f"/v1/api-keys/{adas['api_key']['id']}", headers=bearer(bob))
    assert (response.status_code, error_code(response)) == (404, "NOT_FOUND")
    response = await api.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=bearer(bob))
    assert response.status_code == 404
    assert (await api.get("/v1/api-keys", headers=bearer(bob))).json()["data"]["api_keys"] == []
    assert (await api.get("/v1/auth/me", headers=bearer(adas["key"]))).status_code == 200


async def test_last_used_is_recorded_without_a_write_per_request(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    token = await session_token(api)
    created = await new_key(api, token)
    for _ in range(3):
        await api.get("/v1/auth/me", headers=bearer(created["key"]))
    (listed,) = (await api.get("/v1/api-keys", headers=bearer(token))).json()["data"]["api_keys"]
    first_use = datetime.fromisoformat(listed["last_used_at"])
    assert first_use == clock()
    clock.advance(timedelta(seconds=30))
    await api.get("/v1/auth/me", headers=bearer(created["key"]))
    (listed,) = (await api.get("/v1/api-keys", headers=bearer(token))).json()["data"]["api_keys"]
    assert datetime.fromisoformat(listed["last_used_at"]) == first_use


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": 5}, "name"),
        ({"allowed_tools": "calculator"}, "allowed_tools"),
        ({"allowed_tools": [""]}, "allowed_tools"),
        ({"allowed_tools": [1]}, "allowed_tools"),
        ({"allowed_models": ["m"] * 101}, "allowed_models"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "next tuesday"}, "expires_at"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": 10_001}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": 1.5}, "rate_limit_per_minute"),
        ({"rate_limit_per_day": -1}, "rate_limit_per_day"),
        ({"rate_limit_per_day": 10_000_001}, "rate_limit_per_day"),
        ({"allowed_tool": ["calculator"]}, "allowed_tool"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    token = await session_token(api)
    response = await api.post("/v1/api-keys", json={"name": "k", **body}, headers=bearer(token))
    assert (response.status_code, error_code(response)) == (422, "VALIDATION_ERROR"), response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    assert (await api.get("/v1/api-keys", headers=bearer(token))).json()["data"]["api_keys"] == []


async def test_missing_name_and_malformed_bodies(api: httpx.AsyncClient) -> None:
    token = await session_token(api)
    response = await api.post("/v1/api-keys", json={}, headers=bearer(token))
    assert response.status_code == 422
    response = await api.post(
        "/v1/api-keys",
        content=b"{not json",
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert (response.status_code, error_code(response)) == (400, "INVALID_REQUEST")


async def test_a_malformed_key_id_is_422(api: httpx.AsyncClient) -> None:
    token = await session_token(api)
    response = await api.delete("/v1/api-keys/not-a-uuid", headers=bearer(token))
    assert (response.status_code, error_code(response)) == (422, "VALIDATION_ERROR")


async def test_listing_is_newest_first_and_keeps_revoked_keys(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    token = await session_token(api)
    first = await new_key(api, token, name="first")
    clock.advance(timedelta(seconds=1))
    await new_key(api, token, name="second")
    await api.delete(f"/v1/api-keys/{first['api_key']['id']}", headers=bearer(token))
    keys = (await api.get("/v1/api-keys", headers=bearer(token))).json()["data"]["api_keys"]
    assert [k["name"] for k in keys] == ["second", "first"]
    assert [k["revoked_at"] is None for k in keys] == [True, False]
    assert all(set(k) >= {"id", "prefix", "created_at"} and "key" not in k for k in keys)
    assert datetime.fromisoformat(keys[0]["created_at"]) > datetime(2000, 1, 1, tzinfo=UTC)


async def test_a_key_may_not_ask_for_more_than_the_operator_maximum(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, rate_limit_per_minute=5, rate_limit_per_day=100, rate_limit_max_per_minute=50
    )
    async with running_app(settings, hasher=FakeHasher()) as client:
        token = await session_token(client)
        at_max = await create_key(client, token, rate_limit_per_minute=50, rate_limit_per_day=100)
        over = [
            await create_key(client, token, rate_limit_per_minute=51),
            await create_key(client, token, rate_limit_per_minute=10_000),
            await create_key(client, token, rate_limit_per_day=101),
        ]
    assert at_max.status_code == 201, at_max.text
    assert [r.status_code for r in over] == [422, 422, 422]
    fields = [r.json()["error"]["details"][0]["field"] for r in over]
    assert fields == ["rate_limit_per_minute", "rate_limit_per_minute", "rate_limit_per_day"]
    assert "50" in over[0].json()["error"]["message"]


async def test_live_keys_per_user_are_capped(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys_max_per_user=2)
    async with running_app(settings, hasher=FakeHasher()) as client:
        token = await session_token(client)
        first = await new_key(client, token)
        await new_key(client, token)
        refused = await create_key(client, token)
        revoked = await client.delete(
            f"/v1/api-keys/{first['api_key']['id']}", headers=bearer(token)
        )
        after_revocation = await create_key(client, token)
        refused_again = await create_key(client, token)
        other_user = await create_key(client, await session_token(client, "bob@example.com"))
        listed = await client.get("/v1/api-keys", headers=bearer(token))
    assert (refused.status_code, error_code(refused)) == (409, "API_KEY_LIMIT_REACHED")
    assert "2" in refused.json()["error"]["message"]
    assert revoked.status_code == 204
    assert after_revocation.status_code == 201  # a revoked key no longer counts
    assert (refused_again.status_code, error_code(refused_again)) == (409, "API_KEY_LIMIT_REACHED")
    assert other_user.status_code == 201
    assert len(listed.json()["data"]["api_keys"]) == 3
