"""Session management over HTTP: the registration setting, password change, logging out
everywhere, and that revoked sessions stop working at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, make_settings, register_and_login, running_app

PASSWORD = "correct horse"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(tmp_path)) as client:
        yield client


async def login(api: httpx.AsyncClient, password: str = PASSWORD) -> dict[str, str]:
    response = await api.post(
        "/v1/auth/login", json={"email": "ada@example.com", "password": password}
    )
    assert response.status_code == 200, response.text
    data: dict[str, str] = response.json()["data"]
    return data


async def new_key(api: httpx.AsyncClient, token: str) -> str:
    response = await api.post("/v1/api-keys", json={"name": "ci"}, headers=bearer(token))
    assert response.status_code == 201, response.text
    key: str = response.json()["data"]["key"]
    return key


async def works(api: httpx.AsyncClient, pair: dict[str, str]) -> tuple[bool, bool]:
    """(the access token authenticates, the refresh token refreshes). Refreshing rotates: a
    pair that works must not be used again."""
    me = await api.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    return me.status_code == 200, refreshed.status_code == 200


# --- REGISTRATION ----------------------------------------------------------------------------


async def test_closed_registration_answers_403(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path, registration="closed")) as api:
        response = await api.post(
            "/v1/auth/register",
            json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"},
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "REGISTRATION_CLOSED"
        # The same answer for a taken email: nothing is told about accounts.
        login = await api.post(
            "/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert login.status_code == 401


async def test_open_registration_is_the_default_and_tells_a_taken_email(
    api: httpx.AsyncClient,
) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    assert (await api.post("/v1/auth/register", json=body)).status_code == 201
    again = await api.post("/v1/auth/register", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "EMAIL_TAKEN"


# --- POST /v1/auth/password ------------------------------------------------------------------


async def test_change_password_ends_the_other_sessions_at_once(api: httpx.AsyncClient) -> None:
    current = await register_and_login(api, password=PASSWORD)
    other = await login(api)
    key = await new_key(api, current["access_token"])

    response = await api.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(current["access_token"]),
    )

    assert response.status_code == 204, response.text
    assert await works(api, other) == (False, False)
    assert await works(api, current) == (True, True)
    assert (await api.get("/v1/auth/me", headers=bearer(key))).status_code == 200
    old = await api.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert old.status_code == 401
    await login(api, NEW_PASSWORD)


async def test_change_password_can_revoke_the_api_keys(api: httpx.AsyncClient) -> None:
    current = await register_and_login(api, password=PASSWORD)
    key = await new_key(api, current["access_token"])

    response = await api.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "revoke_api_keys": True},
        headers=bearer(current["access_token"]),
    )

    assert response.status_code == 204, response.text
    assert (await api.get("/v1/auth/me", headers=bearer(key))).status_code == 401


async def test_change_password_refusals(api: httpx.AsyncClient) -> None:
    current = await register_and_login(api, password=PASSWORD)
    headers = bearer(current["access_token"])
    key = await new_key(api, current["access_token"])

    wrong = await api.post(
        "/v1/auth/password",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "WRONG_PASSWORD"

    short = await api.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=headers,
    )
    assert short.status_code == 422
    assert "new_password" in short.text

    with_key = await api.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(key),
    )
    assert with_key.status_code == 403

    anonymous = await api.post(
        "/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert anonymous.status_code == 401
    # None of these changed anything.
    await login(api)


# --- POST /v1/auth/logout-all ----------------------------------------------------------------


async def test_logout_all_ends_every_session_at_once(api: httpx.AsyncClient) -> None:
    first = await register_and_login(api, password=PASSWORD)
    second = await login(api)
    key = await new_key(api, first["access_token"])

    with_key = await api.post("/v1/auth/logout-all", headers=bearer(key))
    assert with_key.status_code == 403

    response = await api.post("/v1/auth/logout-all", headers=bearer(second["access_token"]))

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"revoked_sessions": 2}
    assert await works(api, first) == (False, False)
    assert await works(api, second) == (False, False)
    # API keys are not sessions: they keep working (revoke them one by one or with a
    # password change).
    assert (await api.get("/v1/auth/me", headers=bearer(key))).status_code == 200
