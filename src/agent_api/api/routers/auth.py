"""Accounts and sessions: register, login, refresh, logout, logout-all, password, me."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from agent_api.api.deps import (
    AuthDep,
    CurrentPrincipal,
    RateLimitsDep,
    SessionPrincipal,
    SettingsDep,
    limit_auth_attempt,
)
from agent_api.api.routers.auth_schemas import (
    ChangePasswordRequest,
    LoginRequest,
    LogoutAllPayload,
    MePayload,
    RefreshRequest,
    RegisterRequest,
    TokenPayload,
    UserPayload,
)
from agent_api.api.schemas import (
    CredentialOut,
    Envelope,
    UserOut,
    error_responses,
)

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account",
    description="The email is trimmed and lower-cased; an email taken in any letter case is "
    "409 `EMAIL_TAKEN`. Passwords are 8 to 1024 characters. With `REGISTRATION=closed` "
    "every request is 403 `REGISTRATION_CLOSED` (accounts come from `agent-api create-user`).",
    responses=error_responses(400, 403, 409, 413, 422, 429, 503),
)
async def register(
    body: RegisterRequest, request: Request, auth: AuthDep, rate_limits: RateLimitsDep
) -> Envelope[UserPayload]:
    await limit_auth_attempt(request, rate_limits, "register", body.email)
    user = await auth.sign_up(body.email, body.password, body.name)
    return Envelope(data=UserPayload(user=UserOut.model_validate(user)))


@router.post(
    "/login",
    summary="Log in: an access token and a refresh token",
    description="401 `INVALID_CREDENTIALS` for an unknown email or a wrong password alike.",
    responses=error_responses(400, 401, 413, 422, 429, 503),
)
async def login(
    body: LoginRequest, request: Request, auth: AuthDep, rate_limits: RateLimitsDep
) -> Envelope[TokenPayload]:
    await limit_auth_attempt(request, rate_limits, "login", body.email)
    pair = await auth.login(body.email, body.password)
    return Envelope(data=TokenPayload.model_validate(pair))


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new pair (rotation)",
    description="Every refresh token works once. Presenting one that was already used "
    "revokes the whole session (401).",
    responses=error_responses(400, 401, 413, 422),
)
async def refresh(body: RefreshRequest, auth: AuthDep) -> Envelope[TokenPayload]:
    pair = await auth.refresh(body.refresh_token)
    return Envelope(data=TokenPayload.model_validate(pair))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the current session",
    description="The session's access and refresh tokens stop working at once. "
    "API keys get 403 (revoke them with `DELETE /v1/api-keys/{id}`).",
    responses=error_responses(401, 403, 429),
)
async def logout(principal: CurrentPrincipal, auth: AuthDep) -> Response:
    await auth.logout(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/logout-all",
    summary="End every session of the account, this one included",
    description="Every access and refresh token of the account stops working at once. "
    "API keys are left alone; they get 403 here.",
    responses=error_responses(401, 403, 429),
)
async def logout_all(principal: SessionPrincipal, auth: AuthDep) -> Envelope[LogoutAllPayload]:
    revoked = await auth.logout_all(principal)
    return Envelope(data=LogoutAllPayload(revoked_sessions=revoked))


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the password",
    description="Needs the current password: a wrong one is 403 `WRONG_PASSWORD` (not 401, "
    "the token itself is valid). The new one follows the password policy (422). Every other "
    "session of the account ends at once; the current one stays. With "
    "`revoke_api_keys: true` every API key of the account is revoked too. Session tokens "
    "only: API keys get 403. Attempts count against the login rate limit.",
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def change_password(
    body: ChangePasswordRequest,
    request: Request,
    principal: SessionPrincipal,
    auth: AuthDep,
    rate_limits: RateLimitsDep,
) -> Response:
    # Counted like logins: a stolen access token must not buy a way to guess the password.
    await limit_auth_attempt(request, rate_limits, "password", principal.user.email)
    await auth.change_password(
        principal,
        body.current_password,
        body.new_password,
        revoke_api_keys=body.revoke_api_keys,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    summary="The caller and the credential in use",
    responses=error_responses(401, 429),
)
async def me(principal: CurrentPrincipal, settings: SettingsDep) -> Envelope[MePayload]:
    credential = CredentialOut.of(
        principal.credential, settings.rate_limit_per_minute, settings.rate_limit_per_day
    )
    return Envelope(
        data=MePayload(user=UserOut.model_validate(principal.user), credential=credential)
    )
