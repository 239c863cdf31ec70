"""AuthService against hand-written fakes: register, login, refresh rotation with reuse
detection, logout, and bearer authentication (session tokens and API keys)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest

from agent_api.application.auth import AuthService
from agent_api.application.tokens import TokenService, TokenType
from agent_api.domain.api_keys import ApiKey, generate_key, hash_key
from agent_api.domain.credentials import CredentialType
from agent_api.domain.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    PermissionDenied,
    ValidationFailed,
)
from agent_api.domain.users import Role, User
from tests.unit.fakes import (
    FakeApiKeyRepository,
    FakeClock,
    FakeHasher,
    FakeSessionRepository,
    FakeUserRepository,
)

PASSWORD = "correct horse"
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=7)


@dataclass
class World:
    auth: AuthService
    users: FakeUserRepository
    sessions: FakeSessionRepository
    api_keys: FakeApiKeyRepository
    hasher: FakeHasher
    tokens: TokenService
    clock: FakeClock


def make_tokens(secret: str = "s" * 40) -> TokenService:
    return TokenService(
        secret, access_ttl=ACCESS_TTL, refresh_ttl=REFRESH_TTL, issuer="test", audience="test"
    )


@pytest.fixture
def world() -> World:
    users = FakeUserRepository()
    sessions = FakeSessionRepository(users)
    api_keys = FakeApiKeyRepository(users)
    hasher = FakeHasher()
    tokens = make_tokens()
    clock = FakeClock()
    auth = AuthService(users, sessions, api_keys, hasher, tokens, clock=clock)
    return World(auth, users, sessions, api_keys, hasher, tokens, clock)


async def registered(world: World, email: str = "ada@example.com") -> User:
    return await world.auth.register(email, PASSWORD, "Ada")


# --- register --------------------------------------------------------------------------------


async def test_register_normalises_and_hashes(world: World) -> None:
    user = await world.auth.register("  Ada@Example.COM ", PASSWORD, "  Ada Lovelace ")

    assert user.email == "ada@example.com"
    assert user.name == "Ada Lovelace"
    assert user.role is Role.USER
    assert user.is_active
    assert user.password_hash == FakeHasher.CURRENT + PASSWORD
    assert user.created_at == user.updated_at == world.clock.now
    assert world.users.users[user.id] == user


async def test_register_with_a_role(world: World) -> None:
    user = await world.auth.register("root@example.com", PASSWORD, "Root", Role.ADMIN)
    assert user.role is Role.ADMIN


async def test_register_refuses_an_email_taken_in_another_letter_case(world: World) -> None:
    await registered(world, "ada@example.com")
    with pytest.raises(EmailTaken):
        await world.auth.register("ADA@example.com", PASSWORD, "Other Ada")
    assert len(world.users.users) == 1


@pytest.mark.parametrize("password", ["short", "x" * 1025])
async def test_register_enforces_the_password_policy(world: World, password: str) -> None:
    with pytest.raises(ValidationFailed):
        await world.auth.register("ada@example.com", password, "Ada")
    assert world.users.users == {}


# --- login -----------------------------------------------------------------------------------


async def test_login_opens_a_session_with_a_token_pair(world: World) -> None:
    user = await registered(world)

    pair = await world.auth.login("ada@example.com", PASSWORD)

    access = world.tokens.verify(pair.access_token, TokenType.ACCESS)
    refresh = world.tokens.verify(pair.refresh_token, TokenType.REFRESH)
    assert access.user_id == refresh.user_id == user.id
    assert access.session_id == refresh.session_id
    session = world.sessions.sessions[refresh.session_id]
    assert session.user_id == user.id
    assert session.refresh_jti == refresh.jti
    assert session.expires_at == world.clock.now + REFRESH_TTL
    assert pair.expires_in == 15 * 60
    assert pair.user == user


async def test_login_email_is_case_and_space_insensitive(world: World) -> None:
    await registered(world)
    pair = await world.auth.login("  ADA@example.com ", PASSWORD)
    assert pair.user.email == "ada@example.com"


async def test_login_wrong_password_opens_no_session(world: World) -> None:
    await registered(world)
    with pytest.raises(InvalidCredentials) as wrong:
        await world.auth.login("ada@example.com", "wrong password")
    assert world.sessions.sessions == {}
    assert wrong.value.message == InvalidCredentials.default_message


async def test_login_unknown_email_costs_a_dummy_verify_and_answers_the_same(
    world: World,
) -> None:
    await registered(world)
    with pytest.raises(InvalidCredentials) as wrong_password:
        await world.auth.login("ada@example.com", "wrong password")
    with pytest.raises(InvalidCredentials) as unknown:
        await world.auth.login("nobody@example.com", PASSWORD)

    assert world.hasher.dummy_verifies == 1
    assert (unknown.value.code, unknown.value.message) == (
        wrong_password.value.code,
        wrong_password.value.message,
    )


async def test_login_inactive_account_answers_like_a_wrong_password(world: World) -> None:
    user = await registered(world)
    world.users.deactivate(user.id)
    with pytest.raises(InvalidCredentials) as exc:
        await world.auth.login("ada@example.com", PASSWORD)
    assert exc.value.message == InvalidCredentials.default_message
    assert world.sessions.sessions == {}


async def test_login_upgrades_an_outdated_hash(world: World) -> None:
    user = await registered(world)
    world.users.users[user.id] = dataclasses.replace(
        user, password_hash=FakeHasher.LEGACY + PASSWORD
    )
    world.clock.advance(timedelta(minutes=1))

    await world.auth.login("ada@example.com", PASSWORD)

    stored = world.users.users[user.id]
    assert stored.password_hash == FakeHasher.CURRENT + PASSWORD
    assert stored.updated_at == world.clock.now


async def test_login_keeps_an_outdated_hash_when_the_password_is_wrong(world: World) -> None:
    user = await registered(world)
    legacy = FakeHasher.LEGACY + PASSWORD
    world.users.users[user.id] = dataclasses.replace(user, password_hash=legacy)
    with pytest.raises(InvalidCredentials):
        await world.auth.login("ada@example.com", "wrong password")
    assert world.users.users[user.id].password_hash == legacy


async def test_login_does_not_rewrite_a_current_hash(world: World) -> None:
    user = await registered(world)
    world.clock.advance(timedelta(minutes=1))
    await world.auth.login("ada@example.com", PASSWORD)
    assert world.users.users[user.id] == user


# --- refresh ---------------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(world: World) -> None:
    await registered(world)
    first = await world.auth.login("ada@example.com", PASSWORD)

    second = await world.auth.refresh(first.refresh_token)

    old = world.tokens.verify(first.refresh_token, TokenType.REFRESH)
    new = world.tokens.verify(second.refresh_token, TokenType.REFRESH)
    assert new.session_id == old.session_id
    assert new.jti != old.jti
    assert world.sessions.sessions[new.session_id].refresh_jti == new.jti
    principal = await world.auth.authenticate(second.access_token)
    assert principal.credential.id == new.session_id


async def test_reused_refresh_token_revokes_the_whole_session(world: World) -> None:
    await registered(world)
    first = await world.auth.login("ada@example.com", PASSWORD)
    second = await world.auth.refresh(first.refresh_token)

    with pytest.raises(InvalidToken):
        await world.auth.refresh(first.refresh_token)

    session_id = world.tokens.verify(first.refresh_token, TokenType.REFRESH).session_id
    assert world.sessions.revoked_reasons[session_id] == "refresh_token_reuse"
    # The tokens of the legitimate rotation stop working too.
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(second.access_token)
    with pytest.raises(InvalidToken):
        await world.auth.refresh(second.refresh_token)


async def test_refresh_refuses_an_access_token(world: World) -> None:
    await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    with pytest.raises(InvalidToken, match="refresh"):
        await world.auth.refresh(pair.access_token)
    # A mix-up is not reuse: the session lives on.
    assert await world.auth.refresh(pair.refresh_token)


async def test_refresh_after_the_session_expired(world: World) -> None:
    await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    world.clock.advance(REFRESH_TTL + timedelta(seconds=1))
    with pytest.raises(InvalidToken):
        await world.auth.refresh(pair.refresh_token)


async def test_refresh_for_a_deactivated_account(world: World) -> None:
    user = await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    world.users.deactivate(user.id)
    with pytest.raises(InvalidToken):
        await world.auth.refresh(pair.refresh_token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_refresh_refuses_garbage(world: World, token: str) -> None:
    with pytest.raises(InvalidToken):
        await world.auth.refresh(token)


async def test_refresh_refuses_a_token_signed_with_another_secret(world: World) -> None:
    user = await registered(world)
    forged, _ = make_tokens("another secret " * 3).issue(
        TokenType.REFRESH, user.id, uuid.uuid4(), world.clock.now
    )
    with pytest.raises(InvalidToken):
        await world.auth.refresh(forged)


# --- authenticate and logout -----------------------------------------------------------------


async def test_authenticate_an_access_token(world: World) -> None:
    user = await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)

    principal = await world.auth.authenticate(pair.access_token)

    session_id = world.tokens.verify(pair.refresh_token, TokenType.REFRESH).session_id
    assert principal.user == user
    assert principal.credential.type is CredentialType.SESSION
    assert principal.credential.id == session_id
    assert principal.credential.allowed_tools is None
    assert principal.credential.expires_at == world.sessions.sessions[session_id].expires_at
    assert principal.api_key_id is None


async def test_authenticate_refuses_a_refresh_token(world: World) -> None:
    await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    with pytest.raises(InvalidToken, match="access"):
        await world.auth.authenticate(pair.refresh_token)


async def test_authenticate_refuses_a_deactivated_account(world: World) -> None:
    user = await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    world.users.deactivate(user.id)
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(pair.access_token)


async def test_logout_ends_the_session_at_once(world: World) -> None:
    await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    principal = await world.auth.authenticate(pair.access_token)

    await world.auth.logout(principal)

    assert world.sessions.revoked_reasons[principal.credential.id] == "logout"
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(pair.access_token)
    with pytest.raises(InvalidToken):
        await world.auth.refresh(pair.refresh_token)


def make_key(world: World, user: User, **fields: object) -> str:
    raw = generate_key()
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=user.id,
        name="ci",
        prefix=raw[:12],
        key_hash=hash_key(raw),
        created_at=world.clock.now,
    )
    world.api_keys.put(dataclasses.replace(key, **fields))  # type: ignore[arg-type]
    return raw


async def test_authenticate_an_api_key_carries_its_permissions(world: World) -> None:
    user = await registered(world)
    raw = make_key(world, user, allowed_tools=["calculator"], rate_limit_per_minute=5)

    principal = await world.auth.authenticate(raw)

    assert principal.user == user
    assert principal.credential.type is CredentialType.API_KEY
    assert principal.api_key_id == principal.credential.id
    assert principal.credential.allowed_tools == frozenset({"calculator"})
    assert principal.credential.allowed_models is None
    assert principal.credential.rate_limit_per_minute == 5


@pytest.mark.parametrize(
    "fields",
    [
        {"revoked_at": "now"},
        {"expires_at": "now"},
    ],
    ids=["revoked", "expired"],
)
async def test_authenticate_refuses_unusable_api_keys(world: World, fields: dict[str, str]) -> None:
    user = await registered(world)
    raw = make_key(world, user, **dict.fromkeys(fields, world.clock.now))
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(raw)


async def test_authenticate_refuses_an_unknown_api_key(world: World) -> None:
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(generate_key())


async def test_authenticate_refuses_the_key_of_a_deactivated_account(world: World) -> None:
    user = await registered(world)
    raw = make_key(world, user)
    world.users.deactivate(user.id)
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(raw)


async def test_logout_with_an_api_key_is_refused(world: World) -> None:
    user = await registered(world)
    principal = await world.auth.authenticate(make_key(world, user))
    with pytest.raises(PermissionDenied):
        await world.auth.logout(principal)
