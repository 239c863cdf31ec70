"""Rate limits over HTTP (in-process memory store): the header fields on every limited
answer, 429s, per-key limits, exactness under concurrency, and login/register limits per
client IP and per email."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Unpack

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from agent_api.api.app import create_app
from agent_api.bootstrap import Adapters
from agent_api.config import Settings
from agent_api.infrastructure.metrics import Metrics
from tests.conftest import bearer, make_settings
from tests.unit.fakes import FakeHasher

PASSWORD = "correct horse"
LIMIT_FIELDS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "ratelimit-policy",
    "ratelimit",
)

ClientAt = Callable[[str], httpx.AsyncClient]


@asynccontextmanager
async def app_clients(settings: Settings, **adapters: Unpack[Adapters]) -> AsyncIterator[ClientAt]:
    """The app with its lifespan; `client_at(ip)` is a client whose requests come from `ip`."""
    app = create_app(settings, hasher=FakeHasher(), **adapters)
    clients: list[httpx.AsyncClient] = []

    def client_at(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=manager.app, client=(ip, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    async with LifespanManager(app, startup_timeout=60) as manager:
        try:
            yield client_at
        finally:
            for client in clients:
                await client.aclose()


async def account(client: httpx.AsyncClient, email: str) -> str:
    """Registers and logs in `email`; returns an access token."""
    body = {"email": email, "password": PASSWORD, "name": "Ada"}
    assert (await client.post("/v1/auth/register", json=body)).status_code == 201
    response = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


async def api_key(client: httpx.AsyncClient, token: str, **body: Any) -> str:
    response = await client.post("/v1/api-keys", json={"name": "k", **body}, headers=bearer(token))
    assert response.status_code == 201, response.text
    key: str = response.json()["data"]["key"]
    return key


def rejections(metrics: Metrics, scope: str) -> float:
    value = metrics.registry.get_sample_value(
        "agent_api_rate_limit_rejections_total", {"scope": scope}
    )
    return value or 0.0


async def test_every_limited_answer_carries_the_fields_and_429_says_when(tmp_path: Path) -> None:
    metrics = Metrics()
    settings = make_settings(tmp_path, rate_limit_per_minute=3, rate_limit_per_day=100)
    async with app_clients(settings, metrics=metrics) as client_at:
        client = client_at("10.1.0.1")
        token = await account(client, "ada@example.com")
        answers = [await client.get("/v1/auth/me", headers=bearer(token)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    for answer in answers:
        for field in LIMIT_FIELDS:
            assert len(answer.headers.get_list(field)) == 1, (field, answer.headers)
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    assert all(0 < int(a.headers["x-ratelimit-reset"]) <= 60 for a in answers)
    # OpenAI's names carry the same window; the reset is a duration (`59.9s`, `1m0s`).
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit-requests"] for a in answers} == {"3"}
    for answer in answers:
        reset = answer.headers["x-ratelimit-reset-requests"]
        assert re.fullmatch(r"\d+(\.\d+)?s|1m0s|\d+ms", reset), reset
    assert not any(name.endswith("-tokens") for name in answers[0].headers)
    assert answers[0].headers["ratelimit-policy"] == (
        '"minute";q=3;w=60, "user-minute";q=9;w=60, "day";q=100;w=86400, "user-day";q=300;w=86400'
    )
    assert answers[0].headers["ratelimit"].startswith('"minute";r=2;t=')
    assert '"day";r=99;t=' in answers[0].headers["ratelimit"]

    refused = answers[3]
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert "x-should-retry" not in refused.headers
    assert refused.json() == {
        "success": False,
        "error": {"code": "RATE_LIMITED", "message": "rate limit exceeded"},
    }
    assert rejections(metrics, "minute") == 1


async def test_a_key_has_its_own_limits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_minute=50)
    async with app_clients(settings) as client_at:
        client = client_at("10.1.0.2")
        token = await account(client, "ada@example.com")
        key = await api_key(client, token, rate_limit_per_minute=2)
        by_key = [await client.get("/v1/auth/me", headers=bearer(key)) for _ in range(3)]
        by_session = await client.get("/v1/auth/me", headers=bearer(token))
    assert [a.status_code for a in by_key] == [200, 200, 429]
    assert by_key[0].headers["x-ratelimit-limit"] == "2"
    assert by_session.status_code == 200
    assert by_session.headers["x-ratelimit-limit"] == "50"


async def test_a_spent_daily_budget_is_a_quota_not_worth_retrying(tmp_path: Path) -> None:
    metrics = Metrics()
    settings = make_settings(tmp_path)
    async with app_clients(settings, metrics=metrics) as client_at:
        client = client_at("10.1.0.3")
        key = await api_key(client, await account(client, "ada@example.com"), rate_limit_per_day=2)
        answers = [await client.get("/v1/auth/me", headers=bearer(key)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.headers["x-should-retry"] == "false"
    assert refused.json()["error"]["message"] == "daily request quota exhausted"
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert refused.headers["x-ratelimit-limit"] == "2"
    assert rejections(metrics, "day") == 1


async def test_exactly_the_limit_passes_a_concurrent_burst(tmp_path: Path) -> None:
    limit = 10
    settings = make_settings(tmp_path, rate_limit_per_minute=limit)
    async with app_clients(settings) as client_at:
        client = client_at("10.1.0.4")
        key = await api_key(client, await account(client, "ada@example.com"))
        answers = await asyncio.gather(
            *(client.get("/v1/auth/me", headers=bearer(key)) for _ in range(5 * limit))
        )
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == limit
    assert statuses.count(429) == 4 * limit


async def test_disabled_limits_limit_nothing(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, rate_limit_enabled=False, rate_limit_per_minute=1, auth_rate_limit_per_minute=1
    )
    async with app_clients(settings) as client_at:
        client = client_at("10.1.0.5")
        token = await account(client, "ada@example.com")
        answers = [await client.get("/v1/auth/me", headers=bearer(token)) for _ in range(3)]
        await account(client, "bob@example.com")
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "x-ratelimit-limit" not in answers[0].headers


async def test_public_routes_are_not_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_minute=1)
    async with app_clients(settings) as client_at:
        client = client_at("10.1.0.6")
        answers = [await client.get("/health") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "x-ratelimit-limit" not in answers[0].headers


async def test_login_is_limited_per_client_ip(tmp_path: Path) -> None:
    metrics = Metrics()
    settings = make_settings(tmp_path, auth_rate_limit_per_minute=3)
    async with app_clients(settings, metrics=metrics) as client_at:
        attacker = client_at("10.2.0.1")
        answers = []
        for i in range(4):
            # A forged X-Forwarded-For changes nothing: the ASGI peer address counts.
            answers.append(
                await attacker.post(
                    "/v1/auth/login",
                    json={"email": f"user{i}@example.com", "password": "wrong password"},
                    headers={"X-Forwarded-For": f"192.0.2.{i}"},
                )
            )
        other = await client_at("10.2.0.2").post(
            "/v1/auth/login", json={"email": "user9@example.com", "password": "wrong password"}
        )
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[0].headers["x-ratelimit-limit"] == "3"
    assert "login-ip" in answers[0].headers["ratelimit-policy"]
    assert 0 < int(answers[3].headers["retry-after"]) <= 60
    assert answers[3].json()["error"]["code"] == "RATE_LIMITED"
    assert other.status_code == 401
    assert rejections(metrics, "auth") == 1


async def test_guesses_from_other_addresses_do_not_lock_the_owner_out(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        auth_rate_limit_per_minute=10,
        auth_rate_limit_per_ip_email_per_minute=3,
        auth_rate_limit_per_email_per_minute=20,
    )
    async with app_clients(settings) as client_at:
        await account(client_at("10.3.0.100"), "victim@example.com")
        attacker = client_at("10.3.0.1")
        guesses = [
            await attacker.post(
                "/v1/auth/login",
                json={"email": "Victim@Example.com", "password": f"guess number {i}"},
            )
            for i in range(4)
        ]
        # Five bad logins from five other addresses.
        elsewhere = [
            await client_at(f"10.3.1.{i}").post(
                "/v1/auth/login", json={"email": "victim@example.com", "password": "wrong!!!"}
            )
            for i in range(5)
        ]
        owner = await client_at("10.3.0.200").post(
            "/v1/auth/login", json={"email": "victim@example.com", "password": PASSWORD}
        )
        still_limited = await attacker.post(
            "/v1/auth/login", json={"email": "victim@example.com", "password": PASSWORD}
        )
    assert [g.status_code for g in guesses] == [401, 401, 401, 429]
    assert "login-ip-email" in guesses[0].headers["ratelimit-policy"]
    assert [e.status_code for e in elsewhere] == [401] * 5
    assert owner.status_code == 200, owner.text
    assert still_limited.status_code == 429


async def test_a_distributed_guess_at_one_email_is_still_bounded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_rate_limit_per_email_per_minute=6)
    async with app_clients(settings) as client_at:
        answers = [
            await client_at(f"10.3.2.{i}").post(
                "/v1/auth/login", json={"email": "victim@example.com", "password": "guess!!!"}
            )
            for i in range(7)
        ]
        other_email = await client_at("10.3.2.99").post(
            "/v1/auth/login", json={"email": "someone@example.com", "password": "guess!!!"}
        )
    assert [a.status_code for a in answers] == [401] * 6 + [429]
    assert other_email.status_code == 401


async def test_register_is_limited_per_client_ip(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_rate_limit_per_minute=2)
    async with app_clients(settings) as client_at:
        client = client_at("10.4.0.1")
        answers = [
            await client.post(
                "/v1/auth/register",
                json={"email": f"u{i}@example.com", "password": PASSWORD, "name": "U"},
            )
            for i in range(3)
        ]
    assert [a.status_code for a in answers] == [201, 201, 429]


@pytest.mark.parametrize("path", ["/v1/api-keys", "/v1/usage"])
async def test_every_authenticated_route_is_limited(tmp_path: Path, path: str) -> None:
    settings = make_settings(tmp_path, rate_limit_per_minute=1)
    async with app_clients(settings) as client_at:
        client = client_at("10.5.0.1")
        token = await account(client, "ada@example.com")
        first = await client.get(path, headers=bearer(token))
        second = await client.get(path, headers=bearer(token))
    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["x-ratelimit-remaining"] == "0"


async def test_all_credentials_of_a_user_share_the_user_budget(tmp_path: Path) -> None:
    metrics = Metrics()
    settings = make_settings(tmp_path, rate_limit_per_minute=3, user_rate_limit_per_minute=4)
    async with app_clients(settings, metrics=metrics) as client_at:
        client = client_at("10.6.0.1")
        token = await account(client, "ada@example.com")
        first, second = await api_key(client, token), await api_key(client, token)
        by_first = [await client.get("/v1/auth/me", headers=bearer(first)) for _ in range(3)]
        by_second = [await client.get("/v1/auth/me", headers=bearer(second)) for _ in range(2)]
        by_session = await client.get("/v1/auth/me", headers=bearer(token))
        other_user = await client.get(
            "/v1/auth/me", headers=bearer(await account(client, "bob@example.com"))
        )
    # The session made 2 requests (creating the keys), so the user's 4 are spent after 2 more.
    assert [a.status_code for a in by_first] == [200, 200, 429]
    assert by_first[0].headers["ratelimit-policy"] == (
        '"minute";q=3;w=60, "user-minute";q=4;w=60, "day";q=10000;w=86400, '
        '"user-day";q=30000;w=86400'
    )
    assert by_first[1].headers["x-ratelimit-remaining"] == "0"  # the tightest: the user's
    assert by_first[2].json()["error"]["message"] == (
        "rate limit of this user (all its credentials) exceeded"
    )
    assert [a.status_code for a in by_second] == [429, 429]
    assert by_session.status_code == 429
    assert other_user.status_code == 200
    assert rejections(metrics, "user-minute") == 4


async def test_a_key_limit_above_a_lowered_maximum_is_capped(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    generous = make_settings(tmp_path, database_url=db, rate_limit_max_per_minute=100)
    async with app_clients(generous) as client_at:
        client = client_at("10.6.0.2")
        key = await api_key(
            client, await account(client, "ada@example.com"), rate_limit_per_minute=100
        )
    async with app_clients(
        make_settings(tmp_path, database_url=db, rate_limit_per_minute=2)
    ) as client_at:
        client = client_at("10.6.0.2")
        answers = [await client.get("/v1/auth/me", headers=bearer(key)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit"] == "2"


async def test_failed_authentications_block_the_address_before_any_lookup(tmp_path: Path) -> None:
    metrics = Metrics()
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    key_lookups: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_keys" in statement or "sessions" in statement:
            key_lookups.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    settings = make_settings(tmp_path, auth_failure_limit_per_minute=3)
    async with AsyncExitStack() as stack:
        # The engine is ours: the app leaves what it is given open.
        stack.push_async_callback(engine.dispose)
        client_at = await stack.enter_async_context(
            app_clients(settings, metrics=metrics, engine=engine)
        )
        setup = client_at("10.7.0.1")
        key = await api_key(setup, await account(setup, "ada@example.com"))
        guesser = client_at("10.7.0.2")
        guesses = [
            await guesser.get("/v1/auth/me", headers=bearer(f"sk-guess{i}")) for i in range(2)
        ]
        guesses.append(await guesser.get("/v1/auth/me", headers=bearer("not-a-jwt")))
        lookups_before = len(key_lookups)
        blocked = [
            await guesser.get("/v1/auth/me", headers=bearer("sk-guess-more")),
            await guesser.get("/v1/auth/me", headers=bearer(key)),  # even a valid key
        ]
        lookups_while_blocked = len(key_lookups) - lookups_before
        elsewhere = await client_at("10.7.0.3").get("/v1/auth/me", headers=bearer(key))
        no_token = await client_at("10.7.0.4").get("/v1/auth/me")
    assert [g.status_code for g in guesses] == [401, 401, 401]
    assert [b.status_code for b in blocked] == [429, 429]
    assert 0 < int(blocked[0].headers["retry-after"]) <= 60
    assert blocked[0].json()["error"]["code"] == "RATE_LIMITED"
    assert lookups_while_blocked == 0
    assert elsewhere.status_code == 200
    assert no_token.status_code == 401
    assert rejections(metrics, "auth-failures") == 2
