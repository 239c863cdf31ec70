"""The model catalogue: which models the server offers and which a credential may use."""

from __future__ import annotations

from collections.abc import Sequence

from agent_api.domain.credentials import Principal
from agent_api.domain.errors import ModelNotFound


class ModelCatalog:
    def __init__(self, offered: Sequence[str], default: str) -> None:
        self.offered = tuple(offered)
        self.default = default if default in self.offered else self.offered[0]

    def visible(self, principal: Principal) -> list[str]:
        """The offered models this caller may use, in configuration order."""
        return principal.credential.usable_models(self.offered)

    def resolve(self, principal: Principal, requested: str | None) -> str:
        """`requested`, or when None the default model (or else the first offered model the
        credential may use). Raises ModelNotFound for a model the server does not offer,
        ModelForbidden for one the credential may not use."""
        if requested is None:
            usable = self.visible(principal)
            requested = self.default if self.default in usable or not usable else usable[0]
        model = requested
        if model not in self.offered:
            raise ModelNotFound(f"the model '{model}' does not exist")
        principal.credential.require_model(model)
        return model
