"""The tool registry: every tool this process offers, checked once at startup.

Built by `build_registry(...)` from the built-ins (calculator; web_search when a search
backend is given), the plugins installed under the `agent_api.tools` entry-point group, and
any extra tools given by the composition root, which alone reads the settings. Registration
refuses (with `ToolRegistrationError`, which stops startup) a tool that breaks the `Tool`
contract or takes a name already taken; nothing is registered after startup.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from jsonschema import Draft202012Validator, SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from agent_api.domain.chat import ToolSpec
from agent_api.domain.errors import ToolNotFound
from agent_api.tools.arguments import check_arguments
from agent_api.tools.base import Tool, ToolRegistrationError
from agent_api.tools.calculator import Calculator
from agent_api.tools.plugins import discover_plugins
from agent_api.tools.web_search import WebSearch, WebSearchTool

log = structlog.get_logger("agent_api.tools")

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names


@dataclass(frozen=True, slots=True)
class _Entry:
    tool: Tool
    origin: str
    validator: Validator


def _validator(tool: Tool, origin: str) -> Validator:
    """Checks `tool` against the Tool contract; returns its compiled arguments validator."""
    name = getattr(tool, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ToolRegistrationError(
            f"{origin}: tool name {name!r} must match {NAME_PATTERN.pattern}"
        )
    if not isinstance(getattr(tool, "description", None), str) or not tool.description.strip():
        raise ToolRegistrationError(f"{origin}: tool '{name}' needs a non-empty description")
    if not isinstance(getattr(tool, "requires_approval", None), bool):
        raise ToolRegistrationError(f"{origin}: tool '{name}'.requires_approval must be a bool")
    if not inspect.iscoroutinefunction(getattr(tool, "run", None)):
        raise ToolRegistrationError(f"{origin}: tool '{name}'.run must be an async method")
    schema = getattr(tool, "parameters", None)
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ToolRegistrationError(
            f"{origin}: tool '{name}'.parameters must be a JSON schema of type object"
        )
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ToolRegistrationError(
            f"{origin}: tool '{name}'.parameters is not a valid JSON schema: {exc.message}"
        ) from None
    validator: Validator = cls(schema)
    return validator


class ToolRegistry:
    """Tools by name. `requiring_approval` names tools that need a human decision on top of
    those that declare `requires_approval` themselves (TOOLS_REQUIRING_APPROVAL)."""

    def __init__(self, requiring_approval: Iterable[str] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        self._configured_approval = frozenset(requiring_approval)

    def register(self, tool: Tool, origin: str = "built-in") -> None:
        """Raises ToolRegistrationError for a contract violation or a duplicate name."""
        validator = _validator(tool, origin)
        taken = self._entries.get(tool.name)
        if taken is not None:
            raise ToolRegistrationError(
                f"two tools are named '{tool.name}': {taken.origin} and {origin}"
            )
        self._entries[tool.name] = _Entry(tool, origin, validator)

    @property
    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Tool | None:
        entry = self._entries.get(name)
        return entry.tool if entry else None

    def require(self, name: str) -> Tool:
        """Raises ToolNotFound for a name no registered tool has."""
        entry = self._entries.get(name)
        if entry is None:
            raise ToolNotFound(f"no tool named '{name[:100]}'")
        return entry.tool

    def validate(self, name: str, args: dict[str, Any]) -> None:
        """Raises ToolNotFound, or InvalidArguments naming the offending field."""
        self.require(name)
        check_arguments(self._entries[name].validator, args)

    def needs_approval(self, name: str) -> bool:
        """The tool's own flag OR TOOLS_REQUIRING_APPROVAL. False for unknown names."""
        entry = self._entries.get(name)
        return entry is not None and (
            entry.tool.requires_approval or name in self._configured_approval
        )

    def approval_reason(self, name: str) -> str | None:
        """Why a call of `name` waits for a decision (shown to the user); None when it
        does not."""
        if not self.needs_approval(name):
            return None
        if self._entries[name].tool.requires_approval:
            return f"the tool '{name}' always asks for approval"
        return f"the tool '{name}' is configured to ask for approval (TOOLS_REQUIRING_APPROVAL)"

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]:
        """What each tool offers (name, description, parameters), sorted by name. `names`
        limits them (unknown names are skipped); None means every tool."""
        wanted = self.names if names is None else sorted(set(names) & self._entries.keys())
        return [
            ToolSpec(
                name, self._entries[name].tool.description, self._entries[name].tool.parameters
            )
            for name in wanted
        ]


def build_registry(
    *,
    plugin_settings: object,
    requiring_approval: Iterable[str] = (),
    web_search: WebSearch | None = None,
    extra_tools: Iterable[Tool] = (),
) -> ToolRegistry:
    """Built-ins, then plugins, then `extra_tools`. `plugin_settings` (the `Settings`) is what
    plugin factories are called with; `requiring_approval` (TOOLS_REQUIRING_APPROVAL) names
    tools that need a human decision; `web_search` (a search backend, built when
    WEB_SEARCH_API_KEY is set) enables the `web_search` tool. Raises ToolRegistrationError."""
    requiring_approval = tuple(requiring_approval)
    registry = ToolRegistry(requiring_approval)
    registry.register(Calculator())
    if web_search is not None:
        registry.register(WebSearchTool(web_search))
    for tool, origin in discover_plugins(plugin_settings):
        registry.register(tool, origin)
    for tool in extra_tools:
        registry.register(tool, "extra tool")
    unknown = sorted(set(requiring_approval) - set(registry.names))
    if unknown:
        log.warning("TOOLS_REQUIRING_APPROVAL names tools that are not offered", tools=unknown)
    log.info("tools registered", tools=registry.names)
    return registry
