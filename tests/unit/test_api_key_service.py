"""ApiKeyService (create, list, revoke) and API-key authentication, on hand-written fakes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from agent_api.application.api_keys import ApiKeyService, KeySpec
from agent_api.application.auth import AuthService
from agent_api.application.tokens import TokenService
from agent_api.domain.api_keys import hash_key
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import InvalidToken, NotFound, PermissionDenied
from agent_api.domain.users import Role, User
from tests.unit.fakes import (
    FakeApiKeyRepository,
    FakeClock,
    FakeHasher,
    FakeSessionRepository,
    FakeUserRepository,
)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.users = FakeUserRepository()
        self.keys = FakeApiKeyRepository(self.users)
        self.service = ApiKeyService(self.keys, self.users, clock=self.clock)
        self.auth = AuthService(
            users=self.users,
            sessions=FakeSessionRepository(self.users),
            api_keys=self.keys,
            hasher=FakeHasher(),
            tokens=TokenService(
                "x" * 40,
                access_ttl=timedelta(minutes=15),
                refresh_ttl=timedelta(days=7),
                issuer="test",
                audience="test",
            ),
            clock=self.clock,
        )

    def user(self, email: str = "ada@example.com") -> User:
        now = self.clock()
        user = User(uuid.uuid4(), email, "Ada", Role.USER, True, "fake$pw", now, now)
        self.users.users[user.id] = user
        return user

    def session(self, user: User) -> Principal:
        return Principal(user, Credential(CredentialType.SESSION, uuid.uuid4()))


@pytest.fixture
def world() -> World:
    return World()


async def test_created_key_authenticates_with_its_permissions(world: World) -> None:
    owner = world.session(world.user())
    created = await world.service.create(
        owner, KeySpec(name="bot", allowed_tools=["calculator"], rate_limit_per_minute=7)
    )
    stored = next(iter(world.keys.keys.values()))
    assert stored.key_hash == hash_key(created.secret)
    principal = await world.auth.authenticate(created.secret)
    assert principal.user.id == owner.user.id
    assert principal.api_key_id == created.api_key.id
    assert principal.credential.allows_tool("calculator")
    assert not principal.credential.allows_tool("web_search")
    assert principal.credential.rate_limit_per_minute == 7


async def test_api_keys_may_not_manage_keys(world: World) -> None:
    owner = world.session(world.user())
    created = await world.service.create(owner, KeySpec(name="bot"))
    as_key = await world.auth.authenticate(created.secret)
    with pytest.raises(PermissionDenied):
        await world.service.create(as_key, KeySpec(name="another"))
    with pytest.raises(PermissionDenied):
        await world.service.list(as_key)
    with pytest.raises(PermissionDenied):
        await world.service.revoke(as_key, created.api_key.id)


async def test_listing_and_revoking_are_scoped_to_the_owner(world: World) -> None:
    ada = world.session(world.user("ada@example.com"))
    bob = world.session(world.user("bob@example.com"))
    adas = await world.service.create(ada, KeySpec(name="ada's"))
    await world.service.create(bob, KeySpec(name="bob's"))
    assert [k.name for k in await world.service.list(ada)] == ["ada's"]
    with pytest.raises(NotFound):
        await world.service.revoke(bob, adas.api_key.id)
    with pytest.raises(NotFound):
        await world.service.revoke(ada, uuid.uuid4())
    assert (await world.auth.authenticate(adas.secret)).user.id == ada.user.id


async def test_revocation_and_expiry_take_effect_on_the_next_request(world: World) -> None:
    owner = world.session(world.user())
    revoked = await world.service.create(owner, KeySpec(name="r"))
    expiring = await world.service.create(
        owner, KeySpec(name="e", expires_at=world.clock() + timedelta(minutes=5))
    )
    await world.auth.authenticate(revoked.secret)
    await world.service.revoke(owner, revoked.api_key.id)
    await world.service.revoke(owner, revoked.api_key.id)  # idempotent
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(revoked.secret)
    await world.auth.authenticate(expiring.secret)
    world.clock.advance(timedelta(minutes=5))
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(expiring.secret)


async def test_last_used_is_written_at_most_once_a_minute(world: World) -> None:
    created = await world.service.create(world.session(world.user()), KeySpec(name="k"))
    for _ in range(5):
        await world.auth.authenticate(created.secret)
    assert world.keys.touches == 1
    world.clock.advance(timedelta(seconds=59))
    await world.auth.authenticate(created.secret)
    assert world.keys.touches == 1
    world.clock.advance(timedelta(seconds=1))
    await world.auth.authenticate(created.secret)
    assert world.keys.touches == 2
    (stored,) = await world.keys.list_for_user(created.api_key.user_id)
    assert stored.last_used_at == world.clock()


async def test_operator_creates_keys_by_email(world: World) -> None:
    user = world.user("ada@example.com")
    created = await world.service.create_for_email(" ADA@example.com ", KeySpec(name="cli"))
    assert created.api_key.user_id == user.id
    with pytest.raises(NotFound):
        await world.service.create_for_email("nobody@example.com", KeySpec(name="cli"))
