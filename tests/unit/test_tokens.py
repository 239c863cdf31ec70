"""TokenService: HS256 pinned, every registered claim required, access/refresh never swapped."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from agent_api.application.tokens import REQUIRED_CLAIMS, TokenService, TokenType
from agent_api.domain.errors import InvalidToken

SECRET = "k" * 64
ISSUER = "agent-api-test"
AUDIENCE = "agent-api-clients"


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(
        SECRET,
        access_ttl=timedelta(minutes=15),
        refresh_ttl=timedelta(days=7),
        issuer=ISSUER,
        audience=AUDIENCE,
    )


def now() -> datetime:
    return datetime.now(UTC)


def valid_payload(token_type: str = "access", **changes: Any) -> dict[str, Any]:
    issued = now()
    payload: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": "some-jti",
        "typ": token_type,
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(minutes=5),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    payload.update(changes)
    return payload


def test_round_trip_carries_every_registered_claim(tokens: TokenService) -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    issued = now().replace(microsecond=0)

    token, claims = tokens.issue(TokenType.ACCESS, user_id, session_id, issued)

    header = jwt.get_unverified_header(token)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert set(REQUIRED_CLAIMS) <= set(payload)
    assert payload["typ"] == "access"
    assert (payload["iss"], payload["aud"]) == (ISSUER, AUDIENCE)
    assert payload["exp"] - payload["iat"] == 15 * 60
    verified = tokens.verify(token, TokenType.ACCESS)
    assert verified == claims
    assert (verified.user_id, verified.session_id) == (user_id, session_id)
    assert verified.expires_at == issued + timedelta(minutes=15)


def test_refresh_tokens_live_for_the_refresh_ttl(tokens: TokenService) -> None:
    issued = now().replace(microsecond=0)
    token, claims = tokens.issue(TokenType.REFRESH, uuid.uuid4(), uuid.uuid4(), issued)
    assert claims.expires_at == issued + timedelta(days=7)
    assert tokens.verify(token, TokenType.REFRESH).type is TokenType.REFRESH


def test_every_token_gets_its_own_jti(tokens: TokenService) -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    jtis = {tokens.issue(TokenType.REFRESH, user_id, session_id, now())[1].jti for _ in range(20)}
    assert len(jtis) == 20


@pytest.mark.parametrize(
    ("issued", "expected"),
    [(TokenType.ACCESS, TokenType.REFRESH), (TokenType.REFRESH, TokenType.ACCESS)],
)
def test_access_and_refresh_are_never_accepted_for_each_other(
    tokens: TokenService, issued: TokenType, expected: TokenType
) -> None:
    token, _ = tokens.issue(issued, uuid.uuid4(), uuid.uuid4(), now())
    with pytest.raises(InvalidToken, match=f"expected an {expected.value} token"):
        tokens.verify(token, expected)


def test_expired_token(tokens: TokenService) -> None:
    token, _ = tokens.issue(
        TokenType.ACCESS, uuid.uuid4(), uuid.uuid4(), now() - timedelta(hours=1)
    )
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token, TokenType.ACCESS)


def test_token_not_yet_valid(tokens: TokenService) -> None:
    token, _ = tokens.issue(
        TokenType.ACCESS, uuid.uuid4(), uuid.uuid4(), now() + timedelta(hours=1)
    )
    with pytest.raises(InvalidToken):
        tokens.verify(token, TokenType.ACCESS)


def test_wrong_secret(tokens: TokenService) -> None:
    token = jwt.encode(valid_payload(), "another secret of enough length!!", algorithm="HS256")
    with pytest.raises(InvalidToken, match="invalid token"):
        tokens.verify(token, TokenType.ACCESS)


def test_the_algorithm_is_pinned_to_hs256(tokens: TokenService) -> None:
    assert tokens.verify(jwt.encode(valid_payload(), SECRET, algorithm="HS256"), TokenType.ACCESS)
    other_hmac = jwt.encode(valid_payload(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken):
        tokens.verify(other_hmac, TokenType.ACCESS)


def test_alg_none_is_refused(tokens: TokenService) -> None:
    def b64(data: dict[str, Any]) -> str:
        raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(valid_payload())}."
    with pytest.raises(InvalidToken):
        tokens.verify(unsigned, TokenType.ACCESS)


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_every_registered_claim_is_required(tokens: TokenService, claim: str) -> None:
    payload = valid_payload()
    del payload[claim]
    with pytest.raises(InvalidToken):
        tokens.verify(jwt.encode(payload, SECRET, algorithm="HS256"), TokenType.ACCESS)


@pytest.mark.parametrize(
    "changes",
    [{"iss": "someone-else"}, {"aud": "someone-else"}, {"sub": "not-a-uuid"}, {"sid": "x"}],
    ids=["issuer", "audience", "subject", "session"],
)
def test_foreign_or_malformed_claims(tokens: TokenService, changes: dict[str, str]) -> None:
    token = jwt.encode(valid_payload(**changes), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        tokens.verify(token, TokenType.ACCESS)


@pytest.mark.parametrize("token", ["", "not a jwt", "a.b.c", "x" * 5000])
def test_garbage(tokens: TokenService, token: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.verify(token, TokenType.ACCESS)
