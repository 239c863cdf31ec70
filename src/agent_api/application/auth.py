"""Accounts and sessions: register, login, refresh (rotation with reuse detection), logout,
and turning a bearer credential into a `Principal`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from agent_api.application.ports import (
    ApiKeyRepository,
    PasswordHasher,
    SessionRepository,
    UserRepository,
)
from agent_api.application.tokens import TokenService, TokenType
from agent_api.domain.api_keys import hash_key, looks_like_api_key
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import InvalidCredentials, InvalidToken, PermissionDenied
from agent_api.domain.sessions import Session
from agent_api.domain.users import Role, User, check_password_policy, normalize_email

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        api_keys: ApiKeyRepository,
        hasher: PasswordHasher,
        tokens: TokenService,
        clock: Clock = utcnow,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._api_keys = api_keys
        self._hasher = hasher
        self._tokens = tokens
        self._now = clock

    async def register(self, email: str, password: str, name: str, role: Role = Role.USER) -> User:
        """Creates an active user. Raises ValidationFailed (password policy), EmailTaken."""
        check_password_policy(password)
        now = self._now()
        user = User(
            id=uuid.uuid4(),
            email=normalize_email(email),
            name=name.strip(),
            role=role,
            is_active=True,
            password_hash=await self._hasher.hash(password),
            created_at=now,
            updated_at=now,
        )
        await self._users.add(user)
        return user

    async def login(self, email: str, password: str) -> TokenPair:
        """Opens a session. Raises InvalidCredentials, with the same answer (and about the same
        time) for an unknown email, a wrong password and an inactive account."""
        user = await self._users.get_by_email(normalize_email(email))
        if user is None:
            await self._hasher.dummy_verify()
            raise InvalidCredentials()
        matches, new_hash = await self._hasher.verify(password, user.password_hash)
        if not matches or not user.is_active:
            raise InvalidCredentials()
        now = self._now()
        if new_hash is not None:
            await self._users.set_password_hash(user.id, new_hash, now)
        session_id = uuid.uuid4()
        refresh, refresh_claims = self._tokens.issue(TokenType.REFRESH, user.id, session_id, now)
        await self._sessions.add(
            Session(
                id=session_id,
                user_id=user.id,
                refresh_jti=refresh_claims.jti,
                created_at=now,
                expires_at=refresh_claims.expires_at,
            )
        )
        access, _ = self._tokens.issue(TokenType.ACCESS, user.id, session_id, now)
        return TokenPair(access, refresh, self._expires_in, user)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotates the session's refresh token. Raises InvalidToken; presenting a refresh token
        that was already rotated revokes the whole session (reuse detection)."""
        claims = self._tokens.verify(refresh_token, TokenType.REFRESH)
        now = self._now()
        found = await self._sessions.get_active_with_user(claims.session_id, now)
        if found is None:
            raise InvalidToken("session expired or revoked")
        _, user = found
        if not user.is_active:
            raise InvalidToken("account inactive")
        refresh, new_claims = self._tokens.issue(TokenType.REFRESH, user.id, claims.session_id, now)
        rotated = await self._sessions.rotate(
            claims.session_id, claims.jti, new_claims.jti, new_claims.expires_at, now
        )
        if not rotated:
            await self._sessions.revoke(claims.session_id, "refresh_token_reuse", now)
            raise InvalidToken("refresh token already used; the session has been revoked")
        access, _ = self._tokens.issue(TokenType.ACCESS, user.id, claims.session_id, now)
        return TokenPair(access, refresh, self._expires_in, user)

    async def logout(self, principal: Principal) -> None:
        """Revokes the caller's session. Raises PermissionDenied for API keys (revoke those
        with DELETE /v1/api-keys/{id})."""
        if not principal.credential.is_session:
            raise PermissionDenied("logout needs a session token; API keys are revoked instead")
        await self._sessions.revoke(principal.credential.id, "logout", self._now())

    async def authenticate(self, bearer: str) -> Principal:
        """An access JWT or an API key -> Principal. Raises InvalidToken for anything else,
        including refresh tokens, revoked or expired keys and sessions, inactive users."""
        now = self._now()
        if looks_like_api_key(bearer):
            found_key = await self._api_keys.get_by_hash_with_user(hash_key(bearer))
            if found_key is None:
                raise InvalidToken("invalid API key")
            key, user = found_key
            if not key.is_usable(now):
                raise InvalidToken("API key expired or revoked")
            credential = key.credential()
            if user.is_active and key.needs_touch(now):
                # At most one write per key per minute, not one per request.
                await self._api_keys.touch_last_used(key.id, now)
        else:
            claims = self._tokens.verify(bearer, TokenType.ACCESS)
            found = await self._sessions.get_active_with_user(claims.session_id, now)
            if found is None:
                raise InvalidToken("session expired or revoked")
            session, user = found
            credential = Credential(
                type=CredentialType.SESSION, id=session.id, expires_at=session.expires_at
            )
        if not user.is_active:
            raise InvalidToken("account inactive")
        return Principal(user=user, credential=credential)

    @property
    def _expires_in(self) -> int:
        return int(self._tokens.access_ttl.total_seconds())
