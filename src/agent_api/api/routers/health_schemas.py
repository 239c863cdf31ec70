"""Wire schemas of the health checks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

CheckState = Literal["ok", "down", "not configured"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckState]
