"""The tool system: the `Tool` protocol, the registry, the built-in tools (calculator,
web_search) and entry-point plugins (group `agent_api.tools`).

Tools are application code: they import the domain and the application's ports, never an
adapter or the web layer. Calls are run, checked and recorded by
`agent_api.application.tools.ToolExecutor`.
"""

from agent_api.tools.base import Tool, ToolContext, ToolFailed, ToolRegistrationError
from agent_api.tools.registry import ToolRegistry, build_registry

__all__ = [
    "Tool",
    "ToolContext",
    "ToolFailed",
    "ToolRegistrationError",
    "ToolRegistry",
    "build_registry",
]
