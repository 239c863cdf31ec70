"""The tool system: the `Tool` protocol, the registry, the built-in tools (calculator,
web_search) and entry-point plugins (group `agent_api.tools`).

The package imports only the domain (never the application, an adapter, the web layer or the
configuration): its ports (`WebSearch`, `ToolExecutionRepository`) live beside their users, and
the composition root hands it every setting. Calls are run, checked and recorded by
`agent_api.tools.executor.ToolExecutor`, which answers a `ToolOutcome`.
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
