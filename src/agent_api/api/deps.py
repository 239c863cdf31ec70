"""FastAPI dependencies as `Annotated` aliases: the only place routers get their services and
the caller's identity from."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent_api.api.middleware import add_response_headers
from agent_api.bootstrap import Container
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import PermissionDenied, Unauthenticated

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access token from `POST /v1/auth/login`, or an API key (`sk-...`).",
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Authenticates the bearer credential and counts the request against its rate limits.
    Raises Unauthenticated / InvalidToken, RateLimited (also, before any lookup, for an
    address with too many failed authentications: see RateLimitService)."""
    if credentials is None:
        raise Unauthenticated("missing bearer token in the Authorization header")
    client_ip = _client_ip(request)
    await container.rate_limits.check_auth_failures(client_ip)
    try:
        principal = await container.auth.authenticate(credentials.credentials)
    except Unauthenticated:
        await container.rate_limits.count_auth_failure(client_ip)
        raise
    request.state.principal = principal
    # Every authenticated route is limited here. The middleware adds these header fields to
    # whatever response goes out (streams included); a 429 carries its own.
    headers = await container.rate_limits.check_principal(principal)
    add_response_headers(request.scope, headers)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def limit_auth_attempt(
    request: Request, container: Container, action: str, email: str
) -> None:
    """Counts one login/register attempt per client IP and per email. The IP is the ASGI
    peer: X-Forwarded-For is not trusted (anyone could rotate it). Raises RateLimited, or
    ServiceUnavailable when the limit store is down (these fail closed)."""
    headers = await container.rate_limits.check_auth(action, _client_ip(request), email)
    add_response_headers(request.scope, headers)


def _client_ip(request: Request) -> str | None:
    # The ASGI peer: X-Forwarded-For is not trusted (anyone could rotate it).
    return request.client.host if request.client else None


async def get_session_principal(principal: CurrentPrincipal) -> Principal:
    """Like CurrentPrincipal, but refuses API keys (403): for managing keys and sessions."""
    if not principal.credential.is_session:
        raise PermissionDenied("this needs a session token (log in); API keys may not do it")
    return principal


SessionPrincipal = Annotated[Principal, Depends(get_session_principal)]
