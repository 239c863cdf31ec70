"""Which rate limits apply to a request, and what happens when the limit store is down.

- Authenticated requests: a per-minute and a per-day budget per credential, and the same two
  per user. An API key has its own budget (its own limits, capped at the operator's maximums,
  else the server defaults); every session of a user shares one budget, so logging in again
  never buys a fresh one. On top, every credential of a user (all keys and sessions) counts
  against the user's budget, so creating more keys never buys more. When the store is
  unreachable these **fail open**: the request passes, counted by `on_fail_open`.
- Failed authentications (a bad bearer credential) per client IP: once over the limit, the
  address is refused *before* the credential is looked up (no database work for guessing).
  Fails open as well.
- Login and register: a per-minute budget per client IP, per client IP and email (low), and
  per email from any address (high: guesses from other addresses must not lock the owner out,
  yet a distributed attack stays bounded); each action its own buckets. When the store is
  unreachable these **fail closed** (ServiceUnavailable, 503), since letting them through
  would lift the brute-force protection.

Every decision yields the standard header fields: `X-RateLimit-Limit/Remaining/Reset` for the
window closest to exhaustion, the IETF `RateLimit-Policy` / `RateLimit` fields for all, and
OpenAI's `x-ratelimit-limit/remaining/reset-requests` for the same window as the `X-` ones
(OpenAI's `-tokens` fields are not sent: no token budget per time window is enforced).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent_api.application.ports_limits import RateLimiter, WindowState
from agent_api.domain.credentials import Principal
from agent_api.domain.errors import RateLimited, ServiceUnavailable
from agent_api.domain.users import normalize_email

MINUTE = 60
DAY = 86_400

Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Window:
    """One limit to enforce: its policy name (as sent in the headers), store key, size, and
    the metric scope its refusals are counted under."""

    policy: str
    key: str
    limit: int
    seconds: int
    scope: str


def _whole_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds))


def openai_duration(seconds: float) -> str:
    """`seconds` in OpenAI's `x-ratelimit-reset-*` spelling, which is Go's duration format:
    `20ms`, `1s`, `59.5s`, `6m0s`, `1h0m0s`. Rounded up to the millisecond, never negative."""
    millis = max(0, math.ceil(round(seconds * 1000, 6)))
    if millis < 1000:
        return f"{millis}ms" if millis else "0s"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    secs = f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


def rate_limit_headers(results: Sequence[tuple[Window, WindowState]]) -> Headers:
    """The header fields for windows that were checked (draft-ietf-httpapi-ratelimit-headers
    for `RateLimit-Policy`/`RateLimit`; `X-RateLimit-*` and OpenAI's `x-ratelimit-*-requests`
    for the tightest window). `X-RateLimit-Reset` is in whole seconds from now, like
    `Retry-After`; `x-ratelimit-reset-requests` is a duration (`openai_duration`)."""
    tightest_window, tightest = min(results, key=lambda r: (r[1].remaining, r[0].seconds))
    policies = ", ".join(f'"{w.policy}";q={w.limit};w={w.seconds}' for w, _ in results)
    states = ", ".join(
        f'"{w.policy}";r={s.remaining};t={_whole_seconds(s.reset_after)}' for w, s in results
    )
    return [
        ("X-RateLimit-Limit", str(tightest_window.limit)),
        ("X-RateLimit-Remaining", str(tightest.remaining)),
        ("X-RateLimit-Reset", str(_whole_seconds(tightest.reset_after))),
        ("x-ratelimit-limit-requests", str(tightest_window.limit)),
        ("x-ratelimit-remaining-requests", str(tightest.remaining)),
        ("x-ratelimit-reset-requests", openai_duration(tightest.reset_after)),
        ("RateLimit-Policy", policies),
        ("RateLimit", states),
    ]


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """Per-minute budgets of login/register attempts and of failed authentications."""

    per_ip: int
    per_ip_email: int
    per_email: int
    failures_per_ip: int


QUOTA_POLICIES = frozenset({"day", "user-day"})


class RateLimitService:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        enabled: bool,
        per_minute: int,
        per_day: int,
        auth_per_minute: int,
        user_per_minute: int | None = None,
        user_per_day: int | None = None,
        max_per_minute: int | None = None,
        max_per_day: int | None = None,
        auth: AuthLimits | None = None,
        on_reject: Callable[[str], None] = lambda scope: None,
        on_fail_open: Callable[[], None] = lambda: None,
    ) -> None:
        """`user_*`: the per-user budget (None: not enforced). `max_*`: a key's own limits
        are capped at these (keys created before a lower maximum was configured).
        `auth`: None = `auth_per_minute` for every login window and failures per IP."""
        self._limiter = limiter
        self.enabled = enabled
        self._per_minute = per_minute
        self._per_day = per_day
        self._user_per_minute = user_per_minute
        self._user_per_day = user_per_day
        self._max_per_minute = max_per_minute
        self._max_per_day = max_per_day
        self._auth = auth or AuthLimits(
            auth_per_minute, auth_per_minute, auth_per_minute, auth_per_minute
        )
        self._on_reject = on_reject
        self._on_fail_open = on_fail_open

    def windows_for(self, principal: Principal) -> list[Window]:
        """The windows a request of `principal` counts against, in checking order: the
        credential's minute, the user's minute, the credential's day, the user's day (see
        module doc). Cheap refusals first, so a burst does not eat into the daily budgets."""
        credential = principal.credential
        user = principal.user.id
        owner = f"user:{user}" if credential.is_session else f"key:{credential.id}"
        per_minute = _capped(
            credential.rate_limit_per_minute or self._per_minute, self._max_per_minute
        )
        per_day = _capped(credential.rate_limit_per_day or self._per_day, self._max_per_day)
        windows = [Window("minute", f"{owner}:minute", per_minute, MINUTE, scope="minute")]
        if self._user_per_minute is not None:
            windows.append(
                Window(
                    "user-minute",
                    f"user-total:{user}:minute",
                    self._user_per_minute,
                    MINUTE,
                    scope="user-minute",
                )
            )
        windows.append(Window("day", f"{owner}:day", per_day, DAY, scope="day"))
        if self._user_per_day is not None:
            windows.append(
                Window(
                    "user-day", f"user-total:{user}:day", self._user_per_day, DAY, scope="user-day"
                )
            )
        return windows

    async def check_principal(self, principal: Principal) -> Headers:
        """Counts one request of `principal`; returns the header fields to send.

        Raises RateLimited (`quota=True` when the daily budget is spent). Fails open: an
        unreachable store lets the request through with no headers (and counts it)."""
        if not self.enabled:
            return []
        try:
            return await self._check(self.windows_for(principal))
        except ServiceUnavailable:
            self._on_fail_open()
            return []

    def _failures_window(self, client_ip: str | None) -> Window:
        ip = client_ip or "unknown"
        limit = self._auth.failures_per_ip
        return Window(
            "auth-failures", f"auth-failures:ip:{ip}", limit, MINUTE, scope="auth-failures"
        )

    async def check_auth_failures(self, client_ip: str | None) -> None:
        """Refuses an address that failed authentication too often in the last minute; call
        it before looking the credential up. Counts nothing (see `count_auth_failure`).

        Raises RateLimited, whatever the credential (valid or not: telling them apart would
        take the lookup this spares). Fails open when the store is unreachable."""
        if not self.enabled:
            return
        window = self._failures_window(client_ip)
        try:
            state = await self._limiter.peek(window.key, window.limit, window.seconds)
        except ServiceUnavailable:
            # Let it through; the fail-open is counted once per request, by whichever of
            # `check_principal` / `count_auth_failure` the request reaches next.
            return
        if not state.allowed:
            self._on_reject(window.scope)
            raise RateLimited(
                "too many failed authentications from this address",
                retry_after=_whole_seconds(state.reset_after),
                headers=dict(rate_limit_headers([(window, state)])),
            )

    async def count_auth_failure(self, client_ip: str | None) -> None:
        """Counts one failed authentication of `client_ip`. Never raises: an unreachable
        store fails open (counted by `on_fail_open`)."""
        if not self.enabled:
            return
        window = self._failures_window(client_ip)
        try:
            await self._limiter.hit(window.key, window.limit, window.seconds)
        except ServiceUnavailable:
            self._on_fail_open()

    async def check_auth(self, action: str, client_ip: str | None, email: str) -> Headers:
        """Counts one `action` ("login", "register") attempt per client IP, per client IP and
        email, and per email (see module doc), in that order, stopping at the first refusal:
        an address over its own limits does not count against the email's shared window.

        Raises RateLimited, or ServiceUnavailable when the store is unreachable (fails closed).
        The email is hashed: no addresses end up in the limit store."""
        if not self.enabled:
            return []
        email_digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
        ip = client_ip or "unknown"
        limits = self._auth
        windows = [
            Window(f"{action}-ip", f"{action}:ip:{ip}", limits.per_ip, MINUTE, scope="auth"),
            Window(
                f"{action}-ip-email",
                f"{action}:ip-email:{ip}:{email_digest}",
                limits.per_ip_email,
                MINUTE,
                scope="auth",
            ),
            Window(
                f"{action}-email",
                f"{action}:email:{email_digest}",
                limits.per_email,
                MINUTE,
                scope="auth",
            ),
        ]
        return await self._check(windows)

    async def _check(self, windows: list[Window]) -> Headers:
        # One window at a time, stopping at the first refusal: a request refused by the
        # minute limit does not eat into the daily budget (and an IP over its limit does not
        # lock the targeted email out too).
        results: list[tuple[Window, WindowState]] = []
        for window in windows:
            state = await self._limiter.hit(window.key, window.limit, window.seconds)
            results.append((window, state))
            if not state.allowed:
                self._on_reject(window.scope)
                quota = window.policy in QUOTA_POLICIES
                raise RateLimited(
                    _refusal_message(window.policy),
                    retry_after=_whole_seconds(state.reset_after),
                    quota=quota,
                    headers=dict(rate_limit_headers(results)),
                )
        return rate_limit_headers(results)


def _capped(value: int, maximum: int | None) -> int:
    return value if maximum is None else min(value, maximum)


def _refusal_message(policy: str) -> str:
    if policy == "day":
        return "daily request quota exhausted"
    if policy == "user-day":
        return "daily request quota of this user (all its credentials) exhausted"
    if policy == "user-minute":
        return "rate limit of this user (all its credentials) exceeded"
    return "rate limit exceeded"
