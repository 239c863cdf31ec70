"""Accounts and sessions: register, login, refresh (rotation with reuse detection), logout,
password change, and turning a bearer credential into a `Principal`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from agent_api.application.ports_auth import (
    ApiKeyRepository,
    PasswordHasher,
    SessionRepository,
    UserRepository,
)
from agent_api.application.tokens import TokenService, TokenType
from agent_api.domain.api_keys import hash_key, looks_like_api_key
from agent_api.domain.clock import Clock, utcnow
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import (
    InvalidCredentials,
    InvalidToken,
    PermissionDenied,
    RegistrationClosed,
    WrongPassword,
)
from agent_api.domain.sessions import Session
from agent_api.domain.users import Role, User, check_password_policy, normalize_email


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
        *,
        session_max_age: timedelta = timedelta(days=30),
        registration_open: bool = True,
    ) -> None:
        self._users = users
        self._session_max_age = session_max_age
        self._registration_open = registration_open
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

    async def sign_up(self, email: str, password: str, name: str) -> User:
        """Self-service registration (`POST /v1/auth/register`): a user account. Raises
        RegistrationClosed when registration is closed (accounts then come from the
        `create-user` command, i.e. `register`), ValidationFailed, EmailTaken."""
        if not self._registration_open:
            raise RegistrationClosed()
        return await self.register(email, password, name)

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
        refresh, refresh_claims = self._tokens.issue(
            TokenType.REFRESH, user.id, session_id, now, not_after=now + self._session_max_age
        )
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
        that was already rotated revokes the whole session (reuse detection). The new token
        never outlives the session's absolute deadline (created_at + SESSION_MAX_AGE); a
        session past it is refused."""
        claims = self._tokens.verify(refresh_token, TokenType.REFRESH)
        now = self._now()
        found = await self._sessions.get_active_with_user(claims.session_id, now)
        if found is None:
            raise InvalidToken("session expired or revoked")
        session, user = found
        if not user.is_active:
            raise InvalidToken("account inactive")
        if session.is_past_max_age(now, self._session_max_age):
            await self._sessions.revoke(session.id, "max_age", now)
            raise InvalidToken("session reached its maximum age; log in again")
        refresh, new_claims = self._tokens.issue(
            TokenType.REFRESH,
            user.id,
            claims.session_id,
            now,
            not_after=session.deadline(self._session_max_age),
        )
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

    async def logout_all(self, principal: Principal) -> int:
        """Revokes every session of the caller's user, the current one included; returns how
        many. Raises PermissionDenied for API keys."""
        if not principal.credential.is_session:
            raise PermissionDenied("logout-all needs a session token; API keys may not do it")
        return await self._sessions.revoke_all_for_user(
            principal.user.id, "logout_all", self._now()
        )

    async def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        revoke_api_keys: bool = False,
    ) -> None:
        """Replaces the caller's password and revokes every other session of the user (the
        current one stays valid); with `revoke_api_keys` every key of the user too.

        Raises PermissionDenied for API keys, WrongPassword when `current_password` does not
        match (403, not 401: the bearer token is fine and must not be dropped by clients),
        ValidationFailed when the new password breaks the policy."""
        if not principal.credential.is_session:
            raise PermissionDenied("changing the password needs a session token")
        check_password_policy(new_password)
        user = principal.user
        matches, _ = await self._hasher.verify(current_password, user.password_hash)
        if not matches:
            raise WrongPassword()
        now = self._now()
        await self._users.set_password_hash(user.id, await self._hasher.hash(new_password), now)
        # After the new hash is stored: a failure here is retried with the new password.
        await self._sessions.revoke_all_for_user(
            user.id, "password_changed", now, keep=principal.credential.id
        )
        if revoke_api_keys:
            await self._api_keys.revoke_all_for_user(user.id, now)

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
            if session.is_past_max_age(now, self._session_max_age):
                raise InvalidToken("session reached its maximum age; log in again")
            credential = Credential(
                type=CredentialType.SESSION, id=session.id, expires_at=session.expires_at
            )
        if not user.is_active:
            raise InvalidToken("account inactive")
        return Principal(user=user, credential=credential)

    @property
    def _expires_in(self) -> int:
        return int(self._tokens.access_ttl.total_seconds())
