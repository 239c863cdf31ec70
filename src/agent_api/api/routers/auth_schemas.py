"""Wire schemas of accounts and sessions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from agent_api.api.schemas import CredentialOut, RequestModel, ResponseModel, UserOut
from agent_api.domain.users import (
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
)

Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]


class RegisterRequest(RequestModel):
    email: Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH)]
    password: Password
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)
    ]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"}
            ]
        }
    }


class LoginRequest(RequestModel):
    email: Annotated[str, Field(min_length=1, max_length=EMAIL_MAX_LENGTH)]
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]

    model_config = {
        "json_schema_extra": {
            "examples": [{"email": "ada@example.com", "password": "correct horse battery"}]
        }
    }


class RefreshRequest(RequestModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class ChangePasswordRequest(RequestModel):
    current_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
    new_password: Password
    revoke_api_keys: bool = Field(
        False, description="Also revoke every API key of the account (e.g. after a compromise)"
    )


class LogoutAllPayload(BaseModel):
    revoked_sessions: int = Field(description="How many sessions were ended")


class UserPayload(BaseModel):
    user: UserOut


class TokenPayload(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds")
    user: UserOut


class MePayload(BaseModel):
    user: UserOut
    credential: CredentialOut
