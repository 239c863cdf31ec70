"""Which rate limits apply to a request, and what happens when the limit store is down.

- Authenticated requests: a per-minute and a per-day budget per credential. An API key has its
  own budget (its own limits, else the server defaults); every session of a user shares one
  budget, so logging in again never buys a fresh one. When the store is unreachable these
  **fail open**: the request passes, counted by `on_fail_open`.
- Login and register: a per-minute budget per client IP and per email (each action its own
  buckets). When the store is unreachable these **fail closed** (ServiceUnavailable, 503),
  since letting them through would lift the brute-force protection.

Every decision yields the standard header fields: `X-RateLimit-Limit/Remaining/Reset` for the
window closest to exhaustion, and the IETF `RateLimit-Policy` / `RateLimit` fields for all.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent_api.application.ports import RateLimiter, WindowState
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


def rate_limit_headers(results: Sequence[tuple[Window, WindowState]]) -> Headers:
    """The header fields for windows that were checked (draft-ietf-httpapi-ratelimit-headers
    for `RateLimit-Policy`/`RateLimit`; `X-RateLimit-*` for the tightest window).
    `X-RateLimit-Reset` is in seconds from now, like `Retry-After`."""
    tightest_window, tightest = min(results, key=lambda r: (r[1].remaining, r[0].seconds))
    policies = ", ".join(f'"{w.policy}";q={w.limit};w={w.seconds}' for w, _ in results)
    states = ", ".join(
        f'"{w.policy}";r={s.remaining};t={_whole_seconds(s.reset_after)}' for w, s in results
    )
    return [
        ("X-RateLimit-Limit", str(tightest_window.limit)),
        ("X-RateLimit-Remaining", str(tightest.remaining)),
        ("X-RateLimit-Reset", str(_whole_seconds(tightest.reset_after))),
        ("RateLimit-Policy", policies),
        ("RateLimit", states),
    ]


class RateLimitService:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        enabled: bool,
        per_minute: int,
        per_day: int,
        auth_per_minute: int,
        on_reject: Callable[[str], None] = lambda scope: None,
        on_fail_open: Callable[[], None] = lambda: None,
    ) -> None:
        self._limiter = limiter
        self.enabled = enabled
        self._per_minute = per_minute
        self._per_day = per_day
        self._auth_per_minute = auth_per_minute
        self._on_reject = on_reject
        self._on_fail_open = on_fail_open

    def windows_for(self, principal: Principal) -> list[Window]:
        """The minute and day windows of the principal's credential (see module doc)."""
        credential = principal.credential
        owner = f"user:{principal.user.id}" if credential.is_session else f"key:{credential.id}"
        per_minute = credential.rate_limit_per_minute or self._per_minute
        per_day = credential.rate_limit_per_day or self._per_day
        return [
            Window("minute", f"{owner}:minute", per_minute, MINUTE, scope="minute"),
            Window("day", f"{owner}:day", per_day, DAY, scope="day"),
        ]

    async def check_principal(self, principal: Principal) -> Headers:
        """Counts one request of `principal`; returns the header fields to send.

        Raises RateLimited (`quota=True` when the daily budget is spent). Fails open: an
        unreachable store lets the request through with no headers (and counts it)."""
        if not self.enabled:
            return []
        try:
            return await self._check(self.windows_for(principal), quota_policy="day")
        except ServiceUnavailable:
            self._on_fail_open()
            return []

    async def check_auth(self, action: str, client_ip: str | None, email: str) -> Headers:
        """Counts one `action` ("login", "register") attempt per client IP and per email.

        Raises RateLimited, or ServiceUnavailable when the store is unreachable (fails closed).
        The email is hashed: no addresses end up in the limit store."""
        if not self.enabled:
            return []
        email_digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
        limit = self._auth_per_minute
        ip = client_ip or "unknown"
        windows = [
            Window(f"{action}-ip", f"{action}:ip:{ip}", limit, MINUTE, scope="auth"),
            Window(
                f"{action}-email", f"{action}:email:{email_digest}", limit, MINUTE, scope="auth"
            ),
        ]
        return await self._check(windows, quota_policy=None)

    async def _check(self, windows: list[Window], quota_policy: str | None) -> Headers:
        # One window at a time, stopping at the first refusal: a request refused by the
        # minute limit does not eat into the daily budget (and an IP over its limit does not
        # lock the targeted email out too).
        results: list[tuple[Window, WindowState]] = []
        for window in windows:
            state = await self._limiter.hit(window.key, window.limit, window.seconds)
            results.append((window, state))
            if not state.allowed:
                self._on_reject(window.scope)
                quota = window.policy == quota_policy
                raise RateLimited(
                    "daily request quota exhausted" if quota else "rate limit exceeded",
                    retry_after=_whole_seconds(state.reset_after),
                    quota=quota,
                    headers=dict(rate_limit_headers(results)),
                )
        return rate_limit_headers(results)
