"""The `web_search` tool and its port: searches the web through `WebSearch` (Brave in
production, `agent_api.infrastructure.brave`).

The upstream is fixed by configuration (no user-supplied URLs) and the number of results is
bounded (1..10). Results are untrusted text: they are handed to the model as data.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from agent_api.tools.base import ToolContext

DEFAULT_RESULTS = 5
MAX_RESULTS = 10
MAX_QUERY_LENGTH = 400  # Brave refuses longer queries; say so before asking it


class WebSearchResult(NamedTuple):
    """One hit of a web search: untrusted text, handed to the model as data."""

    title: str
    url: str
    description: str


class WebSearch(Protocol):
    async def search(self, query: str, count: int) -> list[WebSearchResult]:
        """At most `count` (1..10) results for `query`. Raises ToolFailed when the search
        service fails or answers nonsense, ToolTimeout when it does not answer in time; the
        message never carries the service's own answer."""


class WebSearchTool:
    """The built-in `web_search` tool (name, description and parameters kept from the
    original service so its clients keep working)."""

    name = "web_search"
    description = (
        "Search the web for current information. Returns a list of relevant results "
        "with titles, URLs, and descriptions."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "The search query",
                "minLength": 1,
                "maxLength": MAX_QUERY_LENGTH,
                "pattern": "\\S",
            },
            "num_results": {
                "type": "integer",
                "description": "Number of results to return (1-10). Default is 5.",
                "minimum": 1,
                "maximum": MAX_RESULTS,
                "default": DEFAULT_RESULTS,
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    requires_approval = False

    def __init__(self, search: WebSearch) -> None:
        self._search = search

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """`{"results": [{"title", "url", "description"}], "count": n}`. Raises ToolFailed
        or ToolTimeout (from the port)."""
        # JSON Schema counts 5.0 as an integer: normalise before slicing.
        count = int(args.get("num_results", DEFAULT_RESULTS))
        hits = await self._search.search(args["query"].strip(), count)
        results = [hit._asdict() for hit in hits[:count]]
        return {"results": results, "count": len(results)}
