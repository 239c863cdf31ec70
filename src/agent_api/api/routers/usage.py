"""Token usage of the caller: totals and groups over a period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from agent_api.api.deps import CurrentPrincipal, UsageDep
from agent_api.api.routers.usage_schemas import UsageGroup, UsagePayload, UsageTotals
from agent_api.api.schemas import Envelope, error_responses
from agent_api.application.ports_usage import UsageGrouping
from agent_api.application.usage import MAX_PERIOD

router = APIRouter(prefix="/v1/usage", tags=["usage"])


@router.get(
    "",
    summary="Your LLM token usage, in total and per day, model or API key",
    description="Counts usage with `from <= time < to` (default: the last 30 days; at most "
    f"{MAX_PERIOD.days} days; times without offset are UTC). With a session token: all your "
    "usage. With an API key: the usage made with that key.",
    responses=error_responses(401, 422, 429),
)
async def get_usage(
    principal: CurrentPrincipal,
    usage: UsageDep,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    group_by: Annotated[UsageGrouping, Query()] = "day",
) -> Envelope[UsagePayload]:
    report = await usage.report(principal, from_, to, group_by)
    return Envelope(
        data=UsagePayload(
            from_=report.start,
            to=report.end,
            group_by=report.group_by,
            totals=UsageTotals.model_validate(report.totals),
            groups=[UsageGroup.model_validate(bucket) for bucket in report.groups],
        )
    )
