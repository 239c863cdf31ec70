"""What an upstream's failure means for us: which answers are worth retrying, how long the
upstream asks us to wait, and which of our errors each failure becomes.

Our messages are generic on purpose: an upstream's body can hold internals (stack traces,
account names, parts of keys), so it is logged by the adapter and not repeated here; the one
exception is a request refused as invalid, whose message is about the client's own fields.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime

import aiohttp
import httpx

from agent_api.domain.errors import AppError, InvalidRequest, UpstreamFailed, UpstreamTimeout

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The upstream refuses the request itself (e.g. too long for the model's context): retrying
# cannot help and the caller can change it, so these answer 400 rather than 502.
CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})
# Library errors meaning "the network or the peer failed" (httpx-aiohttp does not map all
# of aiohttp's errors to httpx's).
NETWORK_ERRORS = (httpx.TransportError, aiohttp.ClientError, OSError)
UPSTREAM_MESSAGE_CHARS = 300  # of a refused request's message, passed on to the client


def is_timeout(exc: BaseException) -> bool:
    # httpx-aiohttp maps every aiohttp connection error (a dropped keep-alive connection
    # included) to httpx.ConnectTimeout, so a real timeout is known by its cause.
    if isinstance(exc, httpx.TimeoutException):
        return exc.__cause__ is None or isinstance(exc.__cause__, TimeoutError)
    return isinstance(exc, TimeoutError)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None when
    absent or unreadable."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (ValueError, TypeError, IndexError):
        return None


def error_for_status(status: int, body: str, model: str) -> AppError:
    """Our error for an upstream's non-2xx answer. `body` only chooses among our messages,
    except for a request the upstream refuses as invalid (400/413/422) naming the field: its
    OpenAI-shaped `error.message` and `error.param` are about the client's own request fields
    and pass on (clipped), so a forwarded parameter the model does not take is named."""
    if status in CLIENT_FAULT_STATUSES:
        if "context_length" in body or "maximum context" in body:
            return InvalidRequest("the conversation is too long for the model", param="messages")
        return _refused_request(body)
    if status in (401, 403):
        return UpstreamFailed("the language model upstream refused our credentials")
    if status == 404:
        return UpstreamFailed(f"the language model upstream does not serve model '{model}'")
    if status == 429:
        return UpstreamFailed("the language model upstream is rate limiting us; retry later")
    if status in (408, 504):
        return UpstreamTimeout()
    return UpstreamFailed(f"the language model upstream failed (status {status})")


def _refused_request(body: str) -> InvalidRequest:
    """The upstream's words only when it names the request field it refuses (OpenAI's
    `unsupported_parameter`, `invalid_value` ...): such a message is about the client's own
    fields. Without a `param` it could be anything, and stays ours."""
    generic = InvalidRequest("the language model refused the request as invalid")
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return generic
    if not isinstance(error, dict):
        return generic
    message, param = error.get("message"), error.get("param")
    if not (isinstance(message, str) and message.strip() and isinstance(param, str) and param):
        return generic
    return InvalidRequest(
        f"the language model refused the request: {message.strip()[:UPSTREAM_MESSAGE_CHARS]}",
        param=param[:UPSTREAM_MESSAGE_CHARS],
    )
