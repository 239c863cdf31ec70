"""Tools: list what the credential may use, execute one call, execute a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from agent_api.api.deps import CurrentPrincipal, ToolsDep
from agent_api.api.routers.tools_schemas import (
    BatchOut,
    ExecutionOut,
    ToolCallRequest,
    ToolDefinitionOut,
    ToolFunctionOut,
    ToolList,
)
from agent_api.api.schemas import Envelope, error_responses

router = APIRouter(prefix="/v1/tools", tags=["tools"])

MAX_BATCH = 32


_CALCULATOR_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "calculator", "arguments": '{"expression": "1337 * 42"}'},
}
_SEARCH_CALL = {
    "id": "call_2",
    "type": "function",
    "function": {"name": "web_search", "arguments": {"query": "agent api", "num_results": 3}},
}


def _documented(
    *statuses: int,
    examples: dict[int, tuple[str, str]],
    named: dict[int, dict[str, tuple[str, str]]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """`error_responses` with tool-specific examples: status -> (code, message), or, where
    one status has several codes, status -> {example name: (code, message)}."""
    responses = error_responses(*statuses)
    for status, (code, message) in examples.items():
        body = {"success": False, "error": {"code": code, "message": message}}
        responses[status]["content"]["application/json"]["example"] = body
    for status, variants in (named or {}).items():
        content = responses[status]["content"]["application/json"]
        content.pop("example", None)
        content["examples"] = {
            title: {"value": {"success": False, "error": {"code": code, "message": message}}}
            for title, (code, message) in variants.items()
        }
    return responses


_APPROVAL_REQUIRED = (
    "APPROVAL_REQUIRED",
    "the tool 'send_email' needs a human approval: it runs only when the agent calls it in a "
    "conversation and the call is approved",
)


@router.get(
    "",
    summary="List the tools this credential may use",
    description="OpenAI tool definitions sorted by name, each with `requires_approval`. "
    "Tools outside an API key's `allowed_tools` are not listed.",
    responses=error_responses(401, 429),
)
async def list_tools(principal: CurrentPrincipal, tools: ToolsDep) -> Envelope[ToolList]:
    listed = [
        ToolDefinitionOut(
            function=ToolFunctionOut(
                name=spec.name, description=spec.description, parameters=spec.parameters
            ),
            requires_approval=tools.approval_reason(spec.name) is not None,
        )
        for spec in tools.specs_for(principal)
    ]
    return Envelope(data=ToolList(tools=listed))


@router.post(
    "/execute",
    summary="Execute one tool call",
    description="Runs an OpenAI tool call and answers its result. The whole call is checked "
    "before anything runs: the id (at most 100 characters, no control characters; 400 "
    "`INVALID_REQUEST`), the tool and the credential's `allowed_tools`, the arguments against "
    "the tool's schema (no NUL characters; 400 `INVALID_ARGUMENTS` naming the field). A tool "
    "that needs a human approval (`requires_approval` in the listing: its own flag or "
    "`TOOLS_REQUIRING_APPROVAL`) never runs here: 403 `APPROVAL_REQUIRED`; only the agent "
    "may call it, after the approval of a person. Every call, refused or run, is recorded in "
    "the audit table; a call is recorded as running before its tool starts, so a call that "
    "cannot be recorded (503) does not run.",
    responses=_documented(
        400,
        401,
        403,
        404,
        413,
        422,
        429,
        503,
        504,
        examples={
            400: ("INVALID_ARGUMENTS", "invalid arguments: expression is required"),
            404: ("TOOL_NOT_FOUND", "no tool named 'weather'"),
            422: ("TOOL_FAILED", "division by zero"),
            504: ("TOOL_TIMEOUT", "the tool 'web_search' did not finish within 30 s"),
        },
        named={
            403: {
                "tool forbidden": (
                    "TOOL_FORBIDDEN",
                    "this credential may not use tool 'web_search'",
                ),
                "approval required": _APPROVAL_REQUIRED,
            }
        },
    ),
)
async def execute_tool(
    call: Annotated[
        ToolCallRequest,
        Body(
            openapi_examples={
                "calculator": {"summary": "Arithmetic", "value": _CALCULATOR_CALL},
                "object arguments": {"summary": "Arguments as an object", "value": _SEARCH_CALL},
            }
        ),
    ],
    principal: CurrentPrincipal,
    tools: ToolsDep,
) -> Envelope[ExecutionOut]:
    outcome = await tools.execute(principal, call.to_call())
    return Envelope(data=ExecutionOut.model_validate(outcome))


@router.post(
    "/batch",
    summary="Execute several tool calls in parallel",
    description=f"Up to {MAX_BATCH} calls, run in parallel (at most `TOOLS_MAX_CONCURRENT` at "
    "once). Always 200 once the request is valid: each result says `ok` and carries its "
    "`result` or its `error`, in the order of the calls. Each call is checked and recorded "
    "on its own, with the codes of `/v1/tools/execute`: a tool that needs a human approval "
    "is refused with `APPROVAL_REQUIRED` while the other calls run, and a call that could "
    "not be recorded (the database failed) answers `RECORDING_FAILED` without affecting "
    "the others.",
    responses=_documented(
        400,
        401,
        413,
        422,
        429,
        examples={422: ("VALIDATION_ERROR", f"a batch holds at most {MAX_BATCH} calls")},
    ),
)
async def execute_batch(
    calls: Annotated[
        list[ToolCallRequest],
        Body(
            max_length=MAX_BATCH,
            openapi_examples={
                "two calls": {
                    "summary": "Two calls; the second fails",
                    "value": [
                        _CALCULATOR_CALL,
                        {
                            "id": "call_3",
                            "type": "function",
                            "function": {
                                "name": "calculator",
                                "arguments": '{"expression": "1/0"}',
                            },
                        },
                    ],
                }
            },
        ),
    ],
    principal: CurrentPrincipal,
    tools: ToolsDep,
) -> Envelope[BatchOut]:
    outcomes = await tools.run_many(principal, [call.to_call() for call in calls])
    return Envelope(data=BatchOut.of(outcomes))
