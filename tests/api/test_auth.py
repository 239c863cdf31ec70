"""Accounts and sessions over HTTP: register, login, refresh, logout, me, and every error
path in the native envelope."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from sqlalchemy import insert, select

from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.schema import users
from tests.conftest import bearer, make_settings, register_and_login, running_app

PASSWORD = "correct horse"


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, body
    assert set(body["error"]) <= {"code", "message", "details"}
    return response.status_code, body["error"]["code"]


def detail_fields(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the tests whose requests are all refused, so they leave nothing behind."""
    async with running_app(make_settings(tmp_path_factory.mktemp("auth"))) as c:
        yield c


async def register(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    body = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada", **fields}
    return await client.post("/v1/auth/register", json=body)


async def login(
    client: httpx.AsyncClient, email: str = "ada@example.com", password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/auth/me", headers=bearer(token))


# --- register ----------------------------------------------------------------------------------


async def test_register(client: httpx.AsyncClient) -> None:
    response = await register(client, email="  Ada.Lovelace@Example.COM ", name="  Ada  ")

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    user = body["data"]["user"]
    assert set(user) == {"id", "email", "name", "role", "is_active", "created_at"}
    assert user["email"] == "ada.lovelace@example.com"
    assert user["name"] == "Ada"
    assert (user["role"], user["is_active"]) == ("user", True)
    uuid.UUID(user["id"])
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


@pytest.mark.parametrize("again", ["ada@example.com", "ADA@EXAMPLE.COM", " Ada@Example.com "])
async def test_duplicate_email_in_any_letter_case(client: httpx.AsyncClient, again: str) -> None:
    assert (await register(client)).status_code == 201
    response = await register(client, email=again, name="Impostor")
    assert error_of(response) == (409, "EMAIL_TAKEN")


async def test_malformed_json(shared: httpx.AsyncClient) -> None:
    response = await shared.post(
        "/v1/auth/register",
        content=b'{"email": "ada@example.com", "password": ',
        headers={"content-type": "application/json"},
    )
    assert error_of(response) == (400, "INVALID_REQUEST")
    assert response.json()["error"]["message"] == "malformed JSON body"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (
            b"email=ada%40example.com&password=correct+horse&name=Ada",
            "application/x-www-form-urlencoded",
        ),
        (b"just some text", "text/plain"),
        (b'["ada@example.com", "correct horse", "Ada"]', "application/json"),
        (b'"a string"', "application/json"),
    ],
    ids=["form", "text", "json-array", "json-string"],
)
async def test_a_body_that_is_not_a_json_object(
    shared: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await shared.post(
        "/v1/auth/register", content=content, headers={"content-type": content_type}
    )
    assert error_of(response) == (400, "INVALID_REQUEST")


async def test_missing_fields(shared: httpx.AsyncClient) -> None:
    response = await shared.post("/v1/auth/register", json={})
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert sorted(detail_fields(response)) == ["email", "name", "password"]


async def test_missing_body(shared: httpx.AsyncClient) -> None:
    response = await shared.post("/v1/auth/register")
    assert response.status_code in (400, 422)
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "email",
    ["not-an-email", "ada@", "@example.com", "ada lovelace@example.com", "", "a" * 250 + "@x.io"],
)
async def test_invalid_email(shared: httpx.AsyncClient, email: str) -> None:
    response = await register(shared, email=email)
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert detail_fields(response) == ["email"]


@pytest.mark.parametrize("password", ["", "short", "x" * 7, "x" * 1025], ids=len)
async def test_password_out_of_bounds(shared: httpx.AsyncClient, password: str) -> None:
    response = await register(shared, password=password)
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert detail_fields(response) == ["password"]
    if password:
        assert password not in response.text  # the input is never echoed back


@pytest.mark.parametrize("password", ["x" * 8, "x" * 1024], ids=len)
async def test_password_at_the_bounds(client: httpx.AsyncClient, password: str) -> None:
    assert (await register(client, password=password)).status_code == 201
    assert (await login(client, password=password)).status_code == 200


@pytest.mark.parametrize("name", ["", "   ", "x" * 256], ids=["empty", "blank", "too-long"])
async def test_invalid_name(shared: httpx.AsyncClient, name: str) -> None:
    response = await register(shared, name=name)
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert detail_fields(response) == ["name"]


@pytest.mark.parametrize("field", ["email", "password", "name"])
async def test_wrong_field_types(shared: httpx.AsyncClient, field: str) -> None:
    response = await register(shared, **{field: 12345})
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert detail_fields(response) == [field]


# --- body size ---------------------------------------------------------------------------------

MAX_BODY = 20 * 1024 * 1024


async def test_oversize_body_with_content_length(shared: httpx.AsyncClient) -> None:
    payload = json.dumps({"email": "ada@example.com", "password": PASSWORD, "name": "x" * MAX_BODY})
    response = await shared.post(
        "/v1/auth/register", content=payload, headers={"content-type": "application/json"}
    )
    assert int(response.request.headers["content-length"]) > MAX_BODY
    assert error_of(response) == (413, "PAYLOAD_TOO_LARGE")
    assert response.headers["x-request-id"]


async def test_oversize_body_streamed_without_content_length(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "ada@example.com", "password": "correct horse", "name": "'
        for _ in range(MAX_BODY // (64 * 1024) + 1):
            yield b"x" * 64 * 1024
        yield b'"}'

    response = await client.post(
        "/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert error_of(response) == (413, "PAYLOAD_TOO_LARGE")
    # Nothing was registered.
    assert (await register(client)).status_code == 201


async def test_a_body_just_under_the_limit_is_read(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path, max_body_bytes=2048)) as client:
        padded = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada", "pad": ""}
        padded["pad"] = "x" * (2048 - len(json.dumps(padded)))
        json_type = {"content-type": "application/json"}
        response = await client.post(
            "/v1/auth/register", content=json.dumps(padded), headers=json_type
        )
        assert response.status_code == 201
        padded["pad"] += "x"
        response = await client.post(
            "/v1/auth/register", content=json.dumps(padded), headers=json_type
        )
        assert error_of(response) == (413, "PAYLOAD_TOO_LARGE")


# --- login -------------------------------------------------------------------------------------


async def test_login(client: httpx.AsyncClient) -> None:
    user = (await register(client)).json()["data"]["user"]

    response = await login(client, email="ADA@example.com ")

    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 15 * 60
    assert data["user"] == user
    assert data["access_token"] != data["refresh_token"]


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    await register(client)

    wrong_password = await login(client, password="wrong password")
    unknown_email = await login(client, email="nobody@example.com")

    assert error_of(wrong_password) == (401, "INVALID_CREDENTIALS")
    assert unknown_email.status_code == wrong_password.status_code
    assert unknown_email.json() == wrong_password.json()


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "ada@example.com"}, {"password": PASSWORD}, {"email": "", "password": ""}],
)
async def test_login_validation(shared: httpx.AsyncClient, body: dict[str, str]) -> None:
    response = await shared.post("/v1/auth/login", json=body)
    assert error_of(response) == (422, "VALIDATION_ERROR")


async def test_login_malformed_json(shared: httpx.AsyncClient) -> None:
    response = await shared.post(
        "/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
    )
    assert error_of(response) == (400, "INVALID_REQUEST")


async def test_a_bcrypt_hash_from_the_go_database_logs_in_and_is_upgraded(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode()
    async with running_app(settings) as client:
        db = Database(create_engine(settings.database_url))
        try:
            user_id = uuid.uuid4()
            now = datetime.now(UTC)
            async with db.transaction() as conn:
                await conn.execute(
                    insert(users).values(
                        id=user_id,
                        email="gopher@example.com",
                        name="Gopher",
                        password_hash=legacy,
                        created_at=now,
                        updated_at=now,
                    )
                )

            # A password over bcrypt's 72 bytes cannot match a Go hash: 401, never 500.
            too_long = await login(client, "gopher@example.com", PASSWORD + "x" * 80)
            assert error_of(too_long) == (401, "INVALID_CREDENTIALS")
            assert error_of(await login(client, "gopher@example.com", "wrong password")) == (
                401,
                "INVALID_CREDENTIALS",
            )
            assert (await login(client, "gopher@example.com")).status_code == 200

            async with db.connect() as conn:
                stored = (
                    await conn.execute(select(users.c.password_hash).where(users.c.id == user_id))
                ).scalar_one()
            assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
            assert (await login(client, "gopher@example.com")).status_code == 200
        finally:
            await db.dispose()


# --- tokens: me, refresh, logout ---------------------------------------------------------------


async def test_me(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client)

    response = await me(client, tokens["access_token"])

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["user"] == tokens["user"]
    credential = data["credential"]
    assert credential["type"] == "session"
    uuid.UUID(credential["id"])
    assert credential["allowed_tools"] is None
    assert credential["allowed_models"] is None
    assert (credential["rate_limit_per_minute"], credential["rate_limit_per_day"]) == (60, 10000)
    expires_at = datetime.fromisoformat(credential["expires_at"])
    assert timedelta(days=6) < expires_at - datetime.now(UTC) <= timedelta(days=7)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "UNAUTHORIZED"),
        ({"Authorization": "Bearer"}, "UNAUTHORIZED"),
        ({"Authorization": "Basic YWRhOmNvcnJlY3QgaG9yc2U="}, "UNAUTHORIZED"),
        ({"Authorization": "Bearer not-a-token"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer a.b.c"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer sk-not-a-real-key"}, "INVALID_TOKEN"),
    ],
    ids=["none", "empty-bearer", "basic", "garbage", "three-parts", "unknown-key"],
)
async def test_me_without_a_valid_credential(
    shared: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    response = await shared.get("/v1/auth/me", headers=headers)
    assert error_of(response) == (401, code)


async def test_expired_access_token(tmp_path: Path) -> None:
    # Tokens issued 20 minutes ago: the access token (15 min) has expired, the session has not.
    def twenty_minutes_ago() -> datetime:
        return datetime.now(UTC) - timedelta(minutes=20)

    async with running_app(make_settings(tmp_path), clock=twenty_minutes_ago) as client:
        tokens = await register_and_login(client)
        response = await me(client, tokens["access_token"])
    assert error_of(response) == (401, "INVALID_TOKEN")
    assert response.json()["error"]["message"] == "token expired"


async def test_a_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client)
    assert error_of(await me(client, tokens["refresh_token"])) == (401, "INVALID_TOKEN")


async def test_an_access_token_is_not_a_refresh_token(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client)
    assert error_of(await refresh(client, tokens["access_token"])) == (401, "INVALID_TOKEN")
    # The mix-up did not cost the session anything.
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_refresh_rotates(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client)

    response = await refresh(client, first["refresh_token"])

    assert response.status_code == 200
    second = response.json()["data"]
    assert second["token_type"] == "Bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"] == first["user"]
    assert (await me(client, second["access_token"])).status_code == 200
    assert (await refresh(client, second["refresh_token"])).status_code == 200


async def test_a_reused_refresh_token_revokes_the_session(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client)
    second = (await refresh(client, first["refresh_token"])).json()["data"]

    reuse = await refresh(client, first["refresh_token"])

    assert error_of(reuse) == (401, "INVALID_TOKEN")
    # Everything issued in that session stops working, the legitimate new pair included.
    assert error_of(await me(client, second["access_token"])) == (401, "INVALID_TOKEN")
    assert error_of(await refresh(client, second["refresh_token"])) == (401, "INVALID_TOKEN")
    assert error_of(await me(client, first["access_token"])) == (401, "INVALID_TOKEN")
    # Other sessions of the same user are not affected; a new login works.
    assert (await login(client)).status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": 5}, {"refresh_token": "x" * 4097}]
)
async def test_refresh_validation(shared: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await shared.post("/v1/auth/refresh", json=body)
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert detail_fields(response) == ["refresh_token"]


async def test_refresh_garbage(shared: httpx.AsyncClient) -> None:
    assert error_of(await refresh(shared, "garbage")) == (401, "INVALID_TOKEN")


async def test_logout(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client)
    other_session = (await login(client)).json()["data"]

    response = await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))

    assert response.status_code == 204
    assert response.content == b""
    assert error_of(await me(client, tokens["access_token"])) == (401, "INVALID_TOKEN")
    assert error_of(await refresh(client, tokens["refresh_token"])) == (401, "INVALID_TOKEN")
    again = await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert error_of(again) == (401, "INVALID_TOKEN")
    # Logging out ends that session only.
    assert (await me(client, other_session["access_token"])).status_code == 200


async def test_logout_without_a_token(shared: httpx.AsyncClient) -> None:
    assert error_of(await shared.post("/v1/auth/logout")) == (401, "UNAUTHORIZED")
