"""The web_search tool over the WebSearch port: bounded result count, the original's result
shape, and the port's errors passed through."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agent_api.domain.errors import ToolTimeout
from agent_api.tools.base import ToolContext
from agent_api.tools.web_search import WebSearchResult, WebSearchTool

CTX = ToolContext(user_id=uuid.uuid4(), api_key_id=None, tool_call_id="call_1")


class FakeWebSearch:
    def __init__(self, available: int = 20, error: Exception | None = None) -> None:
        self.available = available
        self.error = error
        self.asked: list[tuple[str, int]] = []

    async def search(self, query: str, count: int) -> list[WebSearchResult]:
        self.asked.append((query, count))
        if self.error:
            raise self.error
        # A backend may return more than asked; the tool still honours the count.
        return [
            WebSearchResult(f"t{i}", f"https://example.com/{i}", f"d{i}")
            for i in range(self.available)
        ]


@pytest.mark.parametrize(
    ("args", "count"), [({}, 5), ({"num_results": 3}, 3), ({"num_results": 10.0}, 10)]
)
async def test_counts_default_to_five(args: dict[str, Any], count: int) -> None:
    backend = FakeWebSearch()
    result = await WebSearchTool(backend).run({"query": "  python  ", **args}, CTX)
    assert backend.asked == [("python", count)]
    assert result["count"] == count == len(result["results"])
    assert result["results"][0] == {
        "title": "t0",
        "url": "https://example.com/0",
        "description": "d0",
    }


async def test_fewer_results_than_asked() -> None:
    result = await WebSearchTool(FakeWebSearch(available=2)).run({"query": "q"}, CTX)
    assert result["count"] == 2


async def test_port_errors_pass_through() -> None:
    tool = WebSearchTool(FakeWebSearch(error=ToolTimeout("slow")))
    with pytest.raises(ToolTimeout):
        await tool.run({"query": "q"}, CTX)


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"query": ""},
        {"query": "   "},
        {"query": "q", "num_results": 0},
        {"query": "q", "num_results": 11},
    ],
)
def test_schema_bounds_the_arguments(args: dict[str, Any]) -> None:
    validator = Draft202012Validator(WebSearchTool.parameters)
    assert not validator.is_valid(args)
