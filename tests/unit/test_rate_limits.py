"""RateLimitService: which windows apply, the header fields, quota vs. burst refusals, and
fail-open (authenticated requests) vs. fail-closed (login/register) when the store is down."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agent_api.application.ports_limits import WindowState
from agent_api.application.rate_limits import RateLimitService, openai_duration
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import RateLimited, ServiceUnavailable
from agent_api.domain.users import Role, User


class FakeRateLimiter:
    """Counts hits per key in a dict; `down` makes every hit fail like an unreachable store."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.calls: list[tuple[str, int, int]] = []
        self.down = False

    async def hit(self, key: str, limit: int, window_seconds: int) -> WindowState:
        self.calls.append((key, limit, window_seconds))
        if self.down:
            raise ServiceUnavailable("store down", retry_after=1)
        used = self.counts.get(key, 0)
        allowed = used < limit
        if allowed:
            used = self.counts[key] = used + 1
        return WindowState(allowed, limit, limit - used, reset_after=window_seconds / 2)

    async def peek(self, key: str, limit: int, window_seconds: int) -> WindowState:
        if self.down:
            raise ServiceUnavailable("store down", retry_after=1)
        used = self.counts.get(key, 0)
        return WindowState(used < limit, limit, max(0, limit - used), window_seconds / 2)

    async def aclose(self) -> None:
        pass


class Events:
    def __init__(self) -> None:
        self.rejected: list[str] = []
        self.failed_open = 0

    def reject(self, scope: str) -> None:
        self.rejected.append(scope)

    def fail_open(self) -> None:
        self.failed_open += 1


def principal(
    kind: CredentialType,
    per_minute: int | None = None,
    per_day: int | None = None,
    user: User | None = None,
) -> Principal:
    now = datetime.now(UTC)
    user = user or User(uuid.uuid4(), "a@example.com", "A", Role.USER, True, "h", now, now)
    credential = Credential(
        kind, uuid.uuid4(), rate_limit_per_minute=per_minute, rate_limit_per_day=per_day
    )
    return Principal(user, credential)


def service(limiter: FakeRateLimiter, events: Events, *, enabled: bool = True) -> RateLimitService:
    return RateLimitService(
        limiter,
        enabled=enabled,
        per_minute=3,
        per_day=5,
        auth_per_minute=2,
        on_reject=events.reject,
        on_fail_open=events.fail_open,
    )


@pytest.fixture
def limiter() -> FakeRateLimiter:
    return FakeRateLimiter()


@pytest.fixture
def events() -> Events:
    return Events()


async def test_success_carries_every_header_field(limiter: FakeRateLimiter, events: Events) -> None:
    headers = dict(
        await service(limiter, events).check_principal(principal(CredentialType.SESSION))
    )
    assert headers == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": "30",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "30s",
        "RateLimit-Policy": '"minute";q=3;w=60, "day";q=5;w=86400',
        "RateLimit": '"minute";r=2;t=30, "day";r=4;t=43200',
    }


async def test_the_x_fields_describe_the_window_closest_to_exhaustion(
    limiter: FakeRateLimiter, events: Events
) -> None:
    key = principal(CredentialType.API_KEY, per_minute=100, per_day=2)
    headers = dict(await service(limiter, events).check_principal(key))
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-reset-requests"] == "12h0m0s"


@pytest.mark.parametrize(
    ("seconds", "spelled"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.02, "20ms"),
        (0.0201, "21ms"),
        (1, "1s"),
        (59.5, "59.5s"),
        (61, "1m1s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (86_400, "24h0m0s"),
        (43_200.25, "12h0m0.25s"),
    ],
)
def test_openai_reset_durations_use_go_duration_spelling(seconds: float, spelled: str) -> None:
    assert openai_duration(seconds) == spelled


async def test_keys_use_their_own_limits_and_budget(
    limiter: FakeRateLimiter, events: Events
) -> None:
    key = principal(CredentialType.API_KEY, per_minute=2, per_day=1000)
    limits = service(limiter, events)
    await limits.check_principal(key)
    await limits.check_principal(key)
    with pytest.raises(RateLimited) as caught:
        await limits.check_principal(key)
    assert not caught.value.quota
    assert caught.value.retry_after == 30
    assert caught.value.headers["X-RateLimit-Remaining"] == "0"
    assert events.rejected == ["minute"]
    # A request refused by the minute limit does not eat into the daily budget.
    assert limiter.counts[f"key:{key.credential.id}:day"] == 2
    # Another key of the same user has its own budget.
    other = principal(CredentialType.API_KEY, per_minute=2, user=key.user)
    await limits.check_principal(other)


async def test_sessions_of_one_user_share_a_budget(
    limiter: FakeRateLimiter, events: Events
) -> None:
    first = principal(CredentialType.SESSION)
    limits = service(limiter, events)
    for _ in range(3):
        await limits.check_principal(first)
    # Logging in again (a new session) buys no fresh budget.
    again = principal(CredentialType.SESSION, user=first.user)
    with pytest.raises(RateLimited):
        await limits.check_principal(again)


async def test_the_daily_budget_is_a_quota(limiter: FakeRateLimiter, events: Events) -> None:
    key = principal(CredentialType.API_KEY, per_minute=100, per_day=2)
    limits = service(limiter, events)
    await limits.check_principal(key)
    await limits.check_principal(key)
    with pytest.raises(RateLimited) as caught:
        await limits.check_principal(key)
    assert caught.value.quota
    assert caught.value.retry_after == 43200
    assert "day" in caught.value.headers["RateLimit"]
    assert events.rejected == ["day"]


async def test_authenticated_requests_fail_open(limiter: FakeRateLimiter, events: Events) -> None:
    limiter.down = True
    headers = await service(limiter, events).check_principal(principal(CredentialType.SESSION))
    assert headers == []
    assert events.failed_open == 1


async def test_login_and_register_fail_closed(limiter: FakeRateLimiter, events: Events) -> None:
    limiter.down = True
    with pytest.raises(ServiceUnavailable):
        await service(limiter, events).check_auth("login", "10.0.0.1", "a@example.com")
    assert events.failed_open == 0


async def test_auth_attempts_are_limited_per_ip_and_per_email(
    limiter: FakeRateLimiter, events: Events
) -> None:
    limits = service(limiter, events)
    await limits.check_auth("login", "10.0.0.1", "a@example.com")
    await limits.check_auth("login", "10.0.0.1", "b@example.com")
    with pytest.raises(RateLimited):
        await limits.check_auth("login", "10.0.0.1", "c@example.com")  # the IP's third
    await limits.check_auth("login", "10.0.0.2", "A@Example.com ")  # the email's second
    with pytest.raises(RateLimited):
        await limits.check_auth("login", "10.0.0.3", "a@example.com")  # the email's third
    assert events.rejected == ["auth", "auth"]
    # Register has its own buckets, and no email address reaches the store.
    await limits.check_auth("register", "10.0.0.1", "a@example.com")
    assert not any("example.com" in key for key, _, _ in limiter.calls)


async def test_refused_ip_does_not_count_against_the_email(
    limiter: FakeRateLimiter, events: Events
) -> None:
    limits = service(limiter, events)
    for email in ("x@example.com", "y@example.com"):
        await limits.check_auth("login", "10.0.0.9", email)
    for _ in range(3):
        with pytest.raises(RateLimited):
            await limits.check_auth("login", "10.0.0.9", "victim@example.com")
    await limits.check_auth("login", "10.0.0.1", "victim@example.com")


async def test_disabled_limits_check_nothing(limiter: FakeRateLimiter, events: Events) -> None:
    limits = service(limiter, events, enabled=False)
    limiter.down = True
    for _ in range(10):
        assert await limits.check_principal(principal(CredentialType.SESSION)) == []
        assert await limits.check_auth("login", "10.0.0.1", "a@example.com") == []
    assert limiter.calls == []
