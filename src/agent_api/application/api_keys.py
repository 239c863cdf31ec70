"""API key management: create (the secret is returned this once), list, revoke.

Only a session may manage keys: a key that could mint or revoke keys would turn one leaked
key into unlimited ones. Every operation is scoped to the caller's own keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from agent_api.application.ports_auth import ApiKeyRepository, UserRepository
from agent_api.domain.api_keys import ApiKey
from agent_api.domain.clock import Clock, utcnow
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import ApiKeyLimitReached, NotFound, PermissionDenied
from agent_api.domain.users import User, normalize_email


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly created key and its raw secret. The secret is not stored anywhere: hand it
    to the caller once and drop it."""

    api_key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What the creator asks for (see `ApiKey.issue` for the rules)."""

    name: str
    allowed_tools: Iterable[str] | None = None
    allowed_models: Iterable[str] | None = None
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = None
    rate_limit_per_day: int | None = None
    can_approve: bool = False


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """The operator's bounds on keys: the highest limits a key may ask for (None: no maximum)
    and how many live (not revoked, not expired) keys a user may hold."""

    max_rate_limit_per_minute: int | None = None
    max_rate_limit_per_day: int | None = None
    max_keys_per_user: int | None = None


class ApiKeyService:
    def __init__(
        self,
        api_keys: ApiKeyRepository,
        users: UserRepository,
        clock: Clock = utcnow,
        policy: KeyPolicy = KeyPolicy(),
    ) -> None:
        self._api_keys = api_keys
        self._users = users
        self._now = clock
        self._policy = policy

    async def create(self, principal: Principal, spec: KeySpec) -> NewApiKey:
        """Creates a key for the caller. Raises PermissionDenied for API keys,
        ValidationFailed for a bad spec (limits above the policy's maximums included),
        ApiKeyLimitReached when the caller already has the most live keys allowed."""
        _require_session(principal)
        return await self._issue(principal.user, spec)

    async def list(self, principal: Principal) -> list[ApiKey]:
        """The caller's keys, revoked ones included, newest first. Raises PermissionDenied
        for API keys."""
        _require_session(principal)
        return await self._api_keys.list_for_user(principal.user.id)

    async def revoke(self, principal: Principal, key_id: UUID) -> None:
        """Revokes one of the caller's keys (idempotent); it fails on its next use.
        Raises PermissionDenied for API keys, NotFound for a key that is not the caller's."""
        _require_session(principal)
        if not await self._api_keys.revoke(principal.user.id, key_id, self._now()):
            raise NotFound("API key not found")

    async def create_for_email(self, email: str, spec: KeySpec) -> NewApiKey:
        """For the operator's command line, under the same policy. Raises NotFound for an
        unknown email, ValidationFailed for a bad spec, ApiKeyLimitReached."""
        user = await self._users.get_by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"no user with email {normalize_email(email)}")
        return await self._issue(user, spec)

    async def _issue(self, user: User, spec: KeySpec) -> NewApiKey:
        policy, now = self._policy, self._now()
        key, secret = ApiKey.issue(
            user_id=user.id,
            name=spec.name,
            now=now,
            allowed_tools=spec.allowed_tools,
            allowed_models=spec.allowed_models,
            expires_at=spec.expires_at,
            rate_limit_per_minute=spec.rate_limit_per_minute,
            rate_limit_per_day=spec.rate_limit_per_day,
            can_approve=spec.can_approve,
            max_rate_limit_per_minute=policy.max_rate_limit_per_minute,
            max_rate_limit_per_day=policy.max_rate_limit_per_day,
        )
        # Count, then add: concurrent creations by one user may pass the count together and
        # overshoot by their number (each is a rate-limited request). The cap bounds the
        # budget multiplication, not an exact inventory.
        if policy.max_keys_per_user is not None:
            live = await self._api_keys.count_live_for_user(user.id, now)
            if live >= policy.max_keys_per_user:
                raise ApiKeyLimitReached(
                    f"at most {policy.max_keys_per_user} live API keys per user: revoke one first"
                )
        await self._api_keys.add(key)
        return NewApiKey(api_key=key, secret=secret)


def _require_session(principal: Principal) -> None:
    if not principal.credential.is_session:
        raise PermissionDenied("API keys are managed with a session token; an API key may not")
