"""What a tool is: the `Tool` protocol and the `ToolContext` a call runs with.

A tool is any object with these attributes; it needs no base class. Its contract:

- `name` matches `^[A-Za-z0-9_-]{1,64}$` (OpenAI's rule) and is unique in the registry.
- `parameters` is a JSON schema for the arguments object. The executor validates the
  arguments against it before `run` is called, so `run` may rely on it.
- `run` is a coroutine and must not block the event loop (wrap blocking work in
  `asyncio.to_thread`); it is cancelled when the per-call timeout (TOOL_TIMEOUT) expires.
- `run` returns a JSON-serialisable value (finite numbers only).
- On failure `run` raises `ToolFailed` with a message meant for both the model and the user
  (it is returned to them verbatim). Anything else it raises is logged and answered as
  `TOOL_FAILED` with a generic message, so internals never leak.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import structlog

from agent_api.domain.errors import InvalidArguments, ToolFailed, ToolTimeout

__all__ = [
    "Tool",
    "ToolContext",
    "ToolFailed",
    "ToolRegistrationError",
    "ToolTimeout",
    "run_tool",
]

log = structlog.get_logger("agent_api.tools")


class ToolRegistrationError(Exception):
    """A tool cannot be offered (bad definition, duplicate name, broken plugin). A startup
    error that stops the process, never an answer to a request."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling and on which conversation. `api_key_id` is None for session tokens;
    `conversation_id` is None for direct calls (`/v1/tools/execute`, `/v1/tools/batch`)."""

    user_id: UUID
    api_key_id: UUID | None
    tool_call_id: str
    conversation_id: UUID | None = None


class Tool(Protocol):
    # Read-only members: plain class or instance attributes satisfy them, and so do properties.
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    @property
    def requires_approval(self) -> bool: ...

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        """Runs the tool on schema-valid `args`. Raises ToolFailed (or ToolTimeout for an
        upstream that timed out)."""
        ...


async def run_tool(tool: Tool, args: dict[str, Any], ctx: ToolContext, time_limit: float) -> Any:
    """`tool.run` held to the contract: within `time_limit` seconds (else ToolTimeout), failing
    only with ToolFailed, ToolTimeout or InvalidArguments (anything else is logged and becomes
    a generic ToolFailed), and with a JSON result (else ToolFailed)."""
    name = tool.name
    try:
        async with asyncio.timeout(time_limit):
            result = await tool.run(args, ctx)
    except TimeoutError:
        raise ToolTimeout(f"the tool '{name}' did not finish within {time_limit:g} s") from None
    except (ToolFailed, ToolTimeout, InvalidArguments):
        raise
    except Exception:
        # A bug or an unexpected failure: the details go to the log, not to the caller.
        log.exception("tool raised an unexpected error", tool=name, tool_call_id=ctx.tool_call_id)
        raise ToolFailed(f"the tool '{name}' failed unexpectedly") from None
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        log.error("tool returned a result that is not JSON", tool=name)
        raise ToolFailed(f"the tool '{name}' returned a result that is not JSON") from None
    return result
