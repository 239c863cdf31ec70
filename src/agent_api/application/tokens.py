"""Session tokens (JWT, RFC 8725): HS256 pinned, every registered claim required, and access
and refresh tokens told apart by `typ` so neither is ever accepted for the other."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

import jwt

from agent_api.domain.errors import InvalidToken

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "sid", "jti", "typ", "iat", "nbf", "exp", "iss", "aud"]


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: UUID
    session_id: UUID
    jti: str
    type: TokenType
    expires_at: datetime


class TokenService:
    """Issues and verifies session JWTs. Pure CPU; no I/O."""

    def __init__(
        self,
        secret: str,
        *,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        issuer: str,
        audience: str,
    ) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._issuer = issuer
        self._audience = audience

    def issue(
        self,
        token_type: TokenType,
        user_id: UUID,
        session_id: UUID,
        now: datetime,
        not_after: datetime | None = None,
    ) -> tuple[str, TokenClaims]:
        """A signed token of `token_type`, expiring after its TTL or at `not_after`,
        whichever comes first."""
        ttl = self.access_ttl if token_type is TokenType.ACCESS else self.refresh_ttl
        expires_at = now + ttl if not_after is None else min(now + ttl, not_after)
        claims = TokenClaims(
            user_id=user_id,
            session_id=session_id,
            jti=secrets.token_urlsafe(16),
            type=token_type,
            expires_at=expires_at,
        )
        payload = {
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": claims.jti,
            "typ": token_type.value,
            "iat": now,
            "nbf": now,
            "exp": claims.expires_at,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def verify(self, token: str, expected: TokenType) -> TokenClaims:
        """Raises InvalidToken (with a message safe to show) for a bad signature, a wrong
        algorithm, a missing claim, an expired token or a token of the other type."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        if payload.get("typ") != expected.value:
            raise InvalidToken(f"expected an {expected.value} token")
        try:
            return TokenClaims(
                user_id=UUID(payload["sub"]),
                session_id=UUID(payload["sid"]),
                jti=str(payload["jti"]),
                type=expected,
                expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
            )
        except (ValueError, TypeError):
            raise InvalidToken("invalid token") from None
