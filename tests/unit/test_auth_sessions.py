"""AuthService: the absolute session lifetime, closed registration, password change and
logging out everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from agent_api.application.auth import AuthService
from agent_api.domain.errors import (
    InvalidCredentials,
    InvalidToken,
    PermissionDenied,
    RegistrationClosed,
    ValidationFailed,
    WrongPassword,
)
from tests.unit.fakes import (
    FakeApiKeyRepository,
    FakeClock,
    FakeHasher,
    FakeSessionRepository,
    FakeUserRepository,
)
from tests.unit.test_auth_service import PASSWORD, World, make_key, make_tokens, registered

MAX_AGE = timedelta(days=30)
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def world() -> World:
    users = FakeUserRepository()
    sessions = FakeSessionRepository(users)
    api_keys = FakeApiKeyRepository(users)
    hasher = FakeHasher()
    tokens = make_tokens()
    clock = FakeClock()
    auth = AuthService(
        users, sessions, api_keys, hasher, tokens, clock=clock, session_max_age=MAX_AGE
    )
    return World(auth, users, sessions, api_keys, hasher, tokens, clock)


# --- SESSION_MAX_AGE -------------------------------------------------------------------------


async def test_refreshing_never_extends_a_session_past_its_max_age(world: World) -> None:
    """MAX_AGE (30 days) is well above the refresh TTL (7 days): the cap only shows once
    refreshes near the deadline, so this uses a max age of a day. Tokens are checked against
    the wall clock, so the fake clock starts 20 hours in the past."""
    world.clock.now = datetime.now(UTC) - timedelta(hours=20)
    short = AuthService(
        world.users,
        world.sessions,
        world.api_keys,
        world.hasher,
        world.tokens,
        clock=world.clock,
        session_max_age=timedelta(days=1),
    )
    await registered(world)
    pair = await short.login("ada@example.com", PASSWORD)
    session = next(iter(world.sessions.sessions.values()))
    deadline = session.created_at + timedelta(days=1)
    assert session.expires_at == deadline

    for _ in range(3):
        world.clock.advance(timedelta(hours=6))
        pair = await short.refresh(pair.refresh_token)
        assert world.sessions.sessions[session.id].expires_at == deadline
        # The token's own `exp` is capped too (read without the wall clock's checks).
        exp = jwt.decode(pair.refresh_token, options={"verify_signature": False})["exp"]
        assert exp <= deadline.timestamp()

    world.clock.now = deadline
    with pytest.raises(InvalidToken):
        await short.refresh(pair.refresh_token)


async def test_a_session_older_than_the_max_age_is_refused(world: World) -> None:
    """A session opened before a lower SESSION_MAX_AGE was configured (its expiry is later
    than the new deadline) is refused for refresh and for access."""
    await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    shorter = AuthService(
        world.users,
        world.sessions,
        world.api_keys,
        world.hasher,
        world.tokens,
        clock=world.clock,
        session_max_age=timedelta(minutes=5),
    )
    world.clock.advance(timedelta(minutes=6))
    with pytest.raises(InvalidToken):
        await shorter.authenticate(pair.access_token)
    with pytest.raises(InvalidToken):
        await shorter.refresh(pair.refresh_token)


# --- REGISTRATION ----------------------------------------------------------------------------


async def test_closed_registration_refuses_sign_up_but_not_the_operator(world: World) -> None:
    closed = AuthService(
        world.users,
        world.sessions,
        world.api_keys,
        world.hasher,
        world.tokens,
        clock=world.clock,
        registration_open=False,
    )
    with pytest.raises(RegistrationClosed):
        await closed.sign_up("ada@example.com", PASSWORD, "Ada")
    assert world.users.users == {}
    user = await closed.register("ada@example.com", PASSWORD, "Ada")
    assert world.users.users[user.id] == user


async def test_open_registration_signs_up(world: World) -> None:
    user = await world.auth.sign_up("ada@example.com", PASSWORD, "Ada")
    assert world.users.users[user.id] == user


# --- password change -------------------------------------------------------------------------


async def test_change_password_revokes_the_other_sessions_only(world: World) -> None:
    user = await registered(world)
    current = await world.auth.login("ada@example.com", PASSWORD)
    other = await world.auth.login("ada@example.com", PASSWORD)
    key = make_key(world, user)
    principal = await world.auth.authenticate(current.access_token)

    await world.auth.change_password(principal, PASSWORD, NEW_PASSWORD)

    assert world.users.users[user.id].password_hash == FakeHasher.CURRENT + NEW_PASSWORD
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(other.access_token)
    with pytest.raises(InvalidToken):
        await world.auth.refresh(other.refresh_token)
    assert (await world.auth.authenticate(current.access_token)).user.id == user.id
    assert (await world.auth.authenticate(key)).user.id == user.id
    with pytest.raises(InvalidCredentials):
        await world.auth.login("ada@example.com", PASSWORD)
    await world.auth.login("ada@example.com", NEW_PASSWORD)


async def test_change_password_can_revoke_every_api_key(world: World) -> None:
    user = await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    keys = [make_key(world, user), make_key(world, user)]
    principal = await world.auth.authenticate(pair.access_token)

    await world.auth.change_password(principal, PASSWORD, NEW_PASSWORD, revoke_api_keys=True)

    for key in keys:
        with pytest.raises(InvalidToken):
            await world.auth.authenticate(key)


async def test_change_password_needs_the_current_one(world: World) -> None:
    user = await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    other = await world.auth.login("ada@example.com", PASSWORD)
    principal = await world.auth.authenticate(pair.access_token)

    with pytest.raises(WrongPassword):
        await world.auth.change_password(principal, "not the password", NEW_PASSWORD)

    assert world.users.users[user.id].password_hash == FakeHasher.CURRENT + PASSWORD
    await world.auth.authenticate(other.access_token)


async def test_change_password_applies_the_policy(world: World) -> None:
    await registered(world)
    pair = await world.auth.login("ada@example.com", PASSWORD)
    principal = await world.auth.authenticate(pair.access_token)
    with pytest.raises(ValidationFailed):
        await world.auth.change_password(principal, PASSWORD, "short")


async def test_change_password_with_an_api_key_is_refused(world: World) -> None:
    user = await registered(world)
    principal = await world.auth.authenticate(make_key(world, user))
    with pytest.raises(PermissionDenied):
        await world.auth.change_password(principal, PASSWORD, NEW_PASSWORD)


# --- logout everywhere -----------------------------------------------------------------------


async def test_logout_all_ends_every_session_of_the_user_only(world: World) -> None:
    await registered(world)
    await registered(world, "bob@example.com")
    pairs = [await world.auth.login("ada@example.com", PASSWORD) for _ in range(3)]
    bob = await world.auth.login("bob@example.com", PASSWORD)
    principal = await world.auth.authenticate(pairs[0].access_token)

    assert await world.auth.logout_all(principal) == 3

    for pair in pairs:
        with pytest.raises(InvalidToken):
            await world.auth.authenticate(pair.access_token)
        with pytest.raises(InvalidToken):
            await world.auth.refresh(pair.refresh_token)
    await world.auth.authenticate(bob.access_token)


async def test_logout_all_with_an_api_key_is_refused(world: World) -> None:
    user = await registered(world)
    principal = await world.auth.authenticate(make_key(world, user))
    with pytest.raises(PermissionDenied):
        await world.auth.logout_all(principal)
