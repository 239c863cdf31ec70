"""Usage reports: the caller's LLM token usage over a period, in total and per group.

Recording is the `UsageRepository` port's `record`, called by the agent after every LLM call.
A session sees its user's whole usage; an API key sees only the usage made with that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent_api.application.ports_usage import UsageBucket, UsageGrouping, UsageRepository
from agent_api.domain.clock import Clock, utcnow
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import ValidationFailed

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class UsageReport:
    start: datetime
    end: datetime
    group_by: UsageGrouping
    totals: UsageBucket
    groups: list[UsageBucket]


def _utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


class UsageService:
    def __init__(self, usage: UsageRepository, clock: Clock = utcnow) -> None:
        self._usage = usage
        self._now = clock

    async def report(
        self,
        principal: Principal,
        start: datetime | None,
        end: datetime | None,
        group_by: UsageGrouping,
    ) -> UsageReport:
        """Usage with `start <= time < end`; `end` defaults to now and `start` to 30 days
        before `end`. Raises ValidationFailed when `start >= end` or the period exceeds
        MAX_PERIOD, or when a time is so close to year 1 or 9999 that it leaves the range of
        dates (in UTC, or for the default period)."""
        try:
            end = _utc(end) if end is not None else self._now()
        except OverflowError:
            raise _invalid("to", "out of the range of dates") from None
        try:
            start = _utc(start) if start is not None else end - DEFAULT_PERIOD
        except OverflowError:
            field = "from" if start is not None else "to"
            raise _invalid(field, "out of the range of dates") from None
        if start >= end:
            raise _invalid("from", "must be before 'to'")
        if end - start > MAX_PERIOD:
            raise _invalid("from", f"the period may span at most {MAX_PERIOD.days} days")
        groups = await self._usage.summarize(
            principal.user.id, start, end, group_by, api_key_id=principal.api_key_id
        )
        totals = UsageBucket(
            key=None,
            requests=sum(g.requests for g in groups),
            prompt_tokens=sum(g.prompt_tokens for g in groups),
            completion_tokens=sum(g.completion_tokens for g in groups),
            total_tokens=sum(g.total_tokens for g in groups),
        )
        return UsageReport(start=start, end=end, group_by=group_by, totals=totals, groups=groups)
