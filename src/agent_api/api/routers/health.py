"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter

from agent_api.api.deps import ContainerDep
from agent_api.api.routers.health_schemas import CheckState, Health, Readiness
from agent_api.api.schemas import Envelope, error_responses
from agent_api.domain.errors import ServiceUnavailable

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/health", summary="Liveness: 200 while the process runs")
async def health() -> Envelope[Health]:
    return Envelope(data=Health())


async def _check(probe: Awaitable[object]) -> CheckState:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except Exception:
        return "down"
    return "ok"


@router.get(
    "/ready",
    summary="Readiness: the database and (when configured) Redis answer",
    description="503 `SERVICE_UNAVAILABLE` naming what is down, within a few seconds.",
    responses=error_responses(503),
)
async def ready(container: ContainerDep) -> Envelope[Readiness]:
    redis = container.redis
    probes = {"database": _check(container.db.ping())}
    if redis is not None:
        probes["redis"] = _check(redis.ping())
    states = await asyncio.gather(*probes.values())
    checks: dict[str, CheckState] = {
        "redis": "not configured",
        **dict(zip(probes, states, strict=True)),
    }
    down = [name for name, state in checks.items() if state == "down"]
    if down:
        raise ServiceUnavailable(
            f"not ready: {', '.join(down)} down", retry_after=5, details={"checks": checks}
        )
    return Envelope(data=Readiness(checks=checks))
