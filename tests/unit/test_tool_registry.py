"""The registry: the Tool contract is enforced at startup, names are unique, specs are sorted
and each tool has its effective approval flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_api.domain.chat import ToolSpec
from agent_api.domain.errors import InvalidArguments, ToolNotFound
from agent_api.tools.base import ToolContext, ToolRegistrationError
from agent_api.tools.calculator import Calculator
from agent_api.tools.registry import ToolRegistry, build_registry
from agent_api.tools.web_search import WebSearchResult
from tests.conftest import make_settings


class Named:
    description = "A test tool."
    parameters: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    requires_approval = False

    def __init__(self, name: str, **overrides: Any) -> None:
        self.name = name
        for key, value in overrides.items():
            setattr(self, key, value)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        return args


class SyncRun(Named):
    def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:  # type: ignore[override]
        return args


class NoSearch:
    async def search(self, query: str, count: int) -> list[WebSearchResult]:
        return []


def test_duplicate_names_are_refused_naming_both_origins() -> None:
    registry = ToolRegistry()
    registry.register(Named("twin"), "plugin 'a'")
    with pytest.raises(ToolRegistrationError, match="'twin': plugin 'a' and plugin 'b'"):
        registry.register(Named("twin"), "plugin 'b'")


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        (Named("has space"), "must match"),
        (Named("x" * 65), "must match"),
        (Named("ok", description="  "), "non-empty description"),
        (Named("ok", requires_approval="yes"), "must be a bool"),
        (SyncRun("ok"), "async method"),
        (Named("ok", parameters={"type": "string"}), "type object"),
        (Named("ok", parameters=["not", "a", "dict"]), "type object"),
        (
            Named("ok", parameters={"type": "object", "properties": {"n": {"type": "nonsense"}}}),
            "not a valid JSON schema",
        ),
    ],
)
def test_contract_violations_are_startup_errors(tool: Any, problem: str) -> None:
    with pytest.raises(ToolRegistrationError, match=problem):
        ToolRegistry().register(tool, "extra tool")


def test_specs_are_sorted_with_the_approval_flag() -> None:
    registry = ToolRegistry(requiring_approval=["zeta"])
    for name in ("zeta", "alpha", "mid"):
        registry.register(Named(name, requires_approval=name == "mid"))
    specs = registry.specs()
    assert [s.name for s in specs] == ["alpha", "mid", "zeta"]
    assert [registry.needs_approval(s.name) for s in specs] == [False, True, True]
    assert specs[0] == ToolSpec("alpha", "A test tool.", Named.parameters)
    assert [s.name for s in registry.specs(["zeta", "ghost"])] == ["zeta"]


def test_approval_policy_is_the_flag_or_the_setting() -> None:
    registry = ToolRegistry(requiring_approval=["configured", "ghost"])
    registry.register(Named("declared", requires_approval=True))
    registry.register(Named("configured"))
    registry.register(Named("free"))
    assert registry.needs_approval("declared")
    assert registry.needs_approval("configured")
    assert not registry.needs_approval("free")
    assert not registry.needs_approval("ghost")
    assert "always asks" in (registry.approval_reason("declared") or "")
    assert "TOOLS_REQUIRING_APPROVAL" in (registry.approval_reason("configured") or "")
    assert registry.approval_reason("free") is None


def test_lookup_and_validation() -> None:
    registry = ToolRegistry()
    registry.register(Calculator())
    assert isinstance(registry.require("calculator"), Calculator)
    with pytest.raises(ToolNotFound, match="no tool named 'weather'"):
        registry.require("weather")
    with pytest.raises(InvalidArguments, match="expression is required"):
        registry.validate("calculator", {})
    registry.validate("calculator", {"expression": "1"})


def test_build_registry_offers_web_search_only_with_a_backend(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tools_requiring_approval="web_search")
    approval = settings.tools_requiring_approval
    assert build_registry(plugin_settings=settings, requiring_approval=approval).names == [
        "calculator"
    ]
    registry = build_registry(
        plugin_settings=settings,
        requiring_approval=approval,
        web_search=NoSearch(),
        extra_tools=[Named("extra")],
    )
    assert registry.names == ["calculator", "extra", "web_search"]
    assert registry.needs_approval("web_search")
    assert not registry.needs_approval("calculator")


def test_build_registry_refuses_an_extra_tool_shadowing_a_built_in(tmp_path: Path) -> None:
    with pytest.raises(ToolRegistrationError, match="'calculator': built-in and extra tool"):
        build_registry(plugin_settings=make_settings(tmp_path), extra_tools=[Named("calculator")])
