"""The one credential model shared by session tokens and API keys.

Whatever authenticated a request, the rest of the system sees a `Principal`: the user and the
`Credential` with its tool and model permissions, limits and expiry. Every permission check in
the system goes through `Credential.require_tool` / `Credential.require_model`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from agent_api.domain.errors import ApprovalForbidden, ModelForbidden, ToolForbidden
from agent_api.domain.users import User

WILDCARD = "*"


class CredentialType(StrEnum):
    SESSION = "session"
    API_KEY = "api_key"


def _allows(allowed: frozenset[str] | None, name: str) -> bool:
    # None = everything; "*" = everything; an empty set = nothing.
    return allowed is None or WILDCARD in allowed or name in allowed


@dataclass(frozen=True, slots=True)
class Credential:
    """`allowed_*` None means unrestricted; limits None mean the server defaults.
    `can_approve`: an API key created with the permission to decide approvals (sessions
    always may)."""

    type: CredentialType
    id: UUID
    allowed_tools: frozenset[str] | None = None
    allowed_models: frozenset[str] | None = None
    rate_limit_per_minute: int | None = None
    rate_limit_per_day: int | None = None
    expires_at: datetime | None = None
    can_approve: bool = False

    def allows_tool(self, name: str) -> bool:
        return _allows(self.allowed_tools, name)

    def allows_model(self, name: str) -> bool:
        return _allows(self.allowed_models, name)

    def require_tool(self, name: str) -> None:
        """Raises ToolForbidden unless this credential may use tool `name`."""
        if not self.allows_tool(name):
            raise ToolForbidden(f"this credential may not use tool '{name}'")

    def require_model(self, name: str) -> None:
        """Raises ModelForbidden unless this credential may use model `name`."""
        if not self.allows_model(name):
            raise ModelForbidden(f"this credential may not use model '{name}'")

    def usable_tools(self, names: Iterable[str]) -> list[str]:
        """The subset of `names` this credential may use, sorted."""
        return sorted(name for name in names if self.allows_tool(name))

    def usable_models(self, names: Iterable[str]) -> list[str]:
        """The subset of `names` this credential may use, in the given order."""
        return [name for name in names if self.allows_model(name)]

    @property
    def is_session(self) -> bool:
        return self.type is CredentialType.SESSION

    @property
    def may_decide_approvals(self) -> bool:
        """A person (a session) decides approvals; a program only with a key created with
        `can_approve`, so that a key cannot approve the calls its own runs paused on."""
        return self.is_session or self.can_approve

    def require_approval_rights(self, tools: Iterable[str]) -> None:
        """Checks that this credential may decide the pending calls of `tools`. Raises
        ApprovalForbidden unless it may decide approvals at all, then ToolForbidden for the
        first of `tools` it may not use (deciding a call means being able to run it)."""
        if not self.may_decide_approvals:
            raise ApprovalForbidden(
                "this API key may not decide approvals: use a session, or a key created "
                "with can_approve"
            )
        for name in sorted(set(tools)):
            self.require_tool(name)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling (the user) and with what (the credential)."""

    user: User
    credential: Credential

    @property
    def api_key_id(self) -> UUID | None:
        return None if self.credential.is_session else self.credential.id
