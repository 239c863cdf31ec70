"""BraveWebSearch: the `WebSearch` port on the Brave Search API (httpx).

`GET {WEB_SEARCH_BASE_URL}?q=...&count=...` with the key in `X-Subscription-Token`. The whole
exchange is bounded by one timeout (10 s by default). Upstream failures become `ToolFailed`,
a timeout `ToolTimeout`; the messages say what went wrong in our words and never carry the
upstream's body (which can echo the key or internals).
"""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

import httpx
import structlog

from agent_api.domain.errors import ToolFailed, ToolTimeout
from agent_api.tools.web_search import WebSearchResult

log = structlog.get_logger("agent_api.web_search")

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_COUNT = 10
_MAX_TITLE, _MAX_URL, _MAX_DESCRIPTION = 300, 2000, 1000
_TAG = re.compile(r"<[^>]{0,200}>")


def _text(value: Any, limit: int) -> str:
    # Brave marks matches with <strong>; the model gets plain text.
    if not isinstance(value, str):
        return ""
    return html.unescape(_TAG.sub("", value)).strip()[:limit]


def _status_message(status: int) -> str:
    if status in (401, 403):
        return "the search service refused our API key (check WEB_SEARCH_API_KEY)"
    if status == 429:
        return "the search service's rate limit was reached; try again later"
    if status >= 500:
        return f"the search service failed (HTTP {status}); try again later"
    return f"the search service refused the query (HTTP {status})"


def parse_results(payload: Any, count: int) -> list[WebSearchResult]:
    """Brave's `{"web": {"results": [...]}}` -> at most `count` results with http(s) URLs.
    A response without `web` has no results. Raises ToolFailed for any other shape."""
    if not isinstance(payload, dict):
        raise ToolFailed("the search service sent an unexpected answer")
    web = payload.get("web") or {}
    items = web.get("results", []) if isinstance(web, dict) else None
    if not isinstance(items, list):
        raise ToolFailed("the search service sent an unexpected answer")
    results: list[WebSearchResult] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = _text(item.get("url"), _MAX_URL)
        if not url.startswith(("https://", "http://")):
            continue
        results.append(
            WebSearchResult(
                title=_text(item.get("title"), _MAX_TITLE),
                url=url,
                description=_text(item.get("description"), _MAX_DESCRIPTION),
            )
        )
        if len(results) == count:
            break
    return results


class BraveWebSearch:
    """One long-lived HTTP client; `aclose()` at shutdown."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "X-Subscription-Token": api_key},
            follow_redirects=False,
            transport=transport,
        )

    async def search(self, query: str, count: int) -> list[WebSearchResult]:
        count = max(1, min(count, MAX_COUNT))
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange (slow drips too).
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(
                    self._base_url, params={"q": query, "count": count}
                )
        except (TimeoutError, httpx.TimeoutException):
            log.warning("web search timed out", timeout_s=self._timeout)
            raise ToolTimeout(
                f"the search service did not answer within {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            log.warning("web search unreachable", error=type(exc).__name__)
            raise ToolFailed("the search service could not be reached") from None
        if response.status_code != 200:
            log.warning("web search refused", status=response.status_code)
            raise ToolFailed(_status_message(response.status_code))
        try:
            payload = response.json()
        except (ValueError, RecursionError):
            log.warning("web search answered malformed JSON")
            raise ToolFailed("the search service sent an unreadable answer") from None
        return parse_results(payload, count)

    async def aclose(self) -> None:
        await self._client.aclose()
