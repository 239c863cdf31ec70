"""Tool plugins: installed distributions that declare entry points in the group
`agent_api.tools`.

An entry point names one of:

- a **Tool instance** (an object with a `run` attribute that is not a class): used as is;
- a **Tool class**: instantiated with no arguments;
- a **factory**: any other callable; it is called with the `Settings` (which the composition
  root hands to `build_registry`) and returns a Tool or a list of Tools (for tools that need
  configuration or a client built at startup).

Plugins are loaded at startup, in entry-point name order. A plugin that fails to import, or
yields something that is not a valid tool, stops startup with a `ToolRegistrationError` naming
it: a tool that silently disappeared would be harder to notice than a process that refuses to
start.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from agent_api.tools.base import Tool, ToolRegistrationError

ENTRY_POINT_GROUP = "agent_api.tools"


def _origin(entry_point: EntryPoint) -> str:
    dist = entry_point.dist.name if entry_point.dist else "unknown distribution"
    return f"plugin '{entry_point.name}' ({entry_point.value}, from {dist})"


def _materialise(target: Any, settings: object) -> list[Any]:
    if isinstance(target, type):
        produced = target()
    elif hasattr(target, "run"):
        produced = target
    elif callable(target):
        produced = target(settings)
    else:
        raise TypeError("the entry point names neither a tool, a tool class nor a factory")
    return list(produced) if isinstance(produced, list | tuple) else [produced]


def discover_plugins(settings: object) -> list[tuple[Tool, str]]:
    """(tool, origin) for every tool the installed plugins provide; factories are called with
    `settings` (the `Settings`, passed through untouched). The registry checks each tool
    against the contract. Raises ToolRegistrationError naming a plugin that fails."""
    found: list[tuple[Tool, str]] = []
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        origin = _origin(entry_point)
        try:
            tools = _materialise(entry_point.load(), settings)
        except Exception as exc:
            raise ToolRegistrationError(
                f"{origin} could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        found.extend((tool, origin) for tool in tools)
    return found
