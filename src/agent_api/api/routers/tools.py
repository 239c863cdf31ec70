"""Tools: list what the credential may use, execute one call, execute a batch."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from agent_api.api.deps import CurrentPrincipal, ToolsDep
from agent_api.api.schemas import Envelope, error_responses
from agent_api.application.tools import ToolOutcome
from agent_api.domain.chat import ToolCall
from agent_api.domain.errors import InvalidArguments

router = APIRouter(prefix="/v1/tools", tags=["tools"])

MAX_BATCH = 32


class ToolCallFunction(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["calculator"])
    arguments: Any = Field(
        "{}",
        description="The arguments object as a JSON string (OpenAI's format); an object is "
        "accepted too.",
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "object"}]},
        examples=['{"expression": "1337 * 42"}'],
    )


class ToolCallRequest(BaseModel):
    """An OpenAI tool call."""

    id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Echoed as `tool_call_id`; generated when absent.",
        examples=["call_1"],
    )
    type: Literal["function"] = "function"
    function: ToolCallFunction

    def to_call(self) -> ToolCall:
        arguments = self.function.arguments
        if not isinstance(arguments, str):
            # One decoding path for both forms: the executor parses (and checks) the text.
            try:
                arguments = json.dumps(arguments)
            except RecursionError:
                raise InvalidArguments("arguments are nested too deeply") from None
        # Without an id the executor makes one up (`call_...`).
        return ToolCall(id=self.id or "", name=self.function.name, arguments=arguments)


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


class ToolFunctionOut(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON schema of the arguments object")


class ToolDefinitionOut(BaseModel):
    type: Literal["function"] = "function"
    function: ToolFunctionOut
    requires_approval: bool = Field(
        description="Whether the agent pauses for a human decision before running it"
    )


class ToolList(BaseModel):
    tools: list[ToolDefinitionOut]


class ExecutionOut(BaseModel):
    tool_call_id: str
    name: str
    result: Any = Field(examples=[{"expression": "1337 * 42", "result": 56154}])
    duration_ms: int


class ToolErrorOut(BaseModel):
    code: str = Field(examples=["TOOL_FAILED"])
    message: str = Field(examples=["division by zero"])


class BatchSuccess(BaseModel):
    tool_call_id: str
    name: str
    ok: Literal[True] = True
    result: Any


class BatchFailure(BaseModel):
    tool_call_id: str
    name: str
    ok: Literal[False] = False
    error: ToolErrorOut


class BatchOut(BaseModel):
    results: list[BatchSuccess | BatchFailure] = Field(description="In the order of the calls")

    @classmethod
    def of(cls, outcomes: list[ToolOutcome]) -> BatchOut:
        return cls(
            results=[
                BatchSuccess(tool_call_id=o.tool_call_id, name=o.name, result=o.result)
                if o.ok
                else BatchFailure(
                    tool_call_id=o.tool_call_id,
                    name=o.name,
                    error=ToolErrorOut(
                        code=o.error_code or "TOOL_FAILED", message=o.error_message or ""
                    ),
                )
                for o in outcomes
            ]
        )


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
    definitions = tools.definitions_for(principal.credential)
    return Envelope(data=ToolList.model_validate({"tools": definitions}))


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
    return Envelope(
        data=ExecutionOut(
            tool_call_id=outcome.tool_call_id,
            name=outcome.name,
            result=outcome.result,
            duration_ms=outcome.duration_ms,
        )
    )


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
