"""FastAPI dependencies as `Annotated` aliases: the only place routers get their services and
the caller's identity from. One alias per service (`AuthDep`, `ConversationsDep`...), so a
route's signature says what it uses; none of them adds anything to the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent_api.api.middleware import add_response_headers
from agent_api.application.api_keys import ApiKeyService
from agent_api.application.auth import AuthService
from agent_api.application.conversation_queries import ConversationReader
from agent_api.application.conversations import ConversationService
from agent_api.application.models import ModelCatalog
from agent_api.application.rate_limits import RateLimitService
from agent_api.application.usage import UsageService
from agent_api.bootstrap import Container
from agent_api.config import Settings
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import PermissionDenied, Unauthenticated
from agent_api.infrastructure.metrics import Metrics
from agent_api.tools.executor import ToolExecutor

T = TypeVar("T")

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access token from `POST /v1/auth/login`, or an API key (`sk-...`).",
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


# For the few routes that need several adapters at once (readiness).
ContainerDep = Annotated[Container, Depends(get_container)]


def _service(pick: Callable[[Container], T]) -> Callable[[Container], T]:
    """A dependency giving the part of the container that `pick` selects."""

    def dependency(container: ContainerDep) -> T:
        return pick(container)

    return dependency


SettingsDep = Annotated[Settings, Depends(_service(lambda c: c.settings))]
MetricsDep = Annotated[Metrics, Depends(_service(lambda c: c.metrics))]
AuthDep = Annotated[AuthService, Depends(_service(lambda c: c.auth))]
ApiKeysDep = Annotated[ApiKeyService, Depends(_service(lambda c: c.api_keys))]
RateLimitsDep = Annotated[RateLimitService, Depends(_service(lambda c: c.rate_limits))]
UsageDep = Annotated[UsageService, Depends(_service(lambda c: c.usage))]
ModelsDep = Annotated[ModelCatalog, Depends(_service(lambda c: c.models))]
ToolsDep = Annotated[ToolExecutor, Depends(_service(lambda c: c.tools))]
ConversationsDep = Annotated[ConversationService, Depends(_service(lambda c: c.conversations))]
ConversationReaderDep = Annotated[
    ConversationReader, Depends(_service(lambda c: c.conversation_reader))
]


async def get_principal(
    request: Request,
    auth: AuthDep,
    rate_limits: RateLimitsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Authenticates the bearer credential and counts the request against its rate limits.
    Raises Unauthenticated / InvalidToken, RateLimited (also, before any lookup, for an
    address with too many failed authentications: see RateLimitService)."""
    if credentials is None:
        raise Unauthenticated("missing bearer token in the Authorization header")
    client_ip = _client_ip(request)
    await rate_limits.check_auth_failures(client_ip)
    try:
        principal = await auth.authenticate(credentials.credentials)
    except Unauthenticated:
        await rate_limits.count_auth_failure(client_ip)
        raise
    request.state.principal = principal
    # Every authenticated route is limited here. The middleware adds these header fields to
    # whatever response goes out (streams included); a 429 carries its own.
    headers = await rate_limits.check_principal(principal)
    add_response_headers(request.scope, headers)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def limit_auth_attempt(
    request: Request, rate_limits: RateLimitService, action: str, email: str
) -> None:
    """Counts one login/register attempt per client IP and per email. The IP is the ASGI
    peer: X-Forwarded-For is not trusted (anyone could rotate it). Raises RateLimited, or
    ServiceUnavailable when the limit store is down (these fail closed)."""
    headers = await rate_limits.check_auth(action, _client_ip(request), email)
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
