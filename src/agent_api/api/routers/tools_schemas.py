"""Wire schemas of the tool routes: OpenAI tool calls in, definitions and results out."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_api.api.schemas import ResponseModel
from agent_api.domain.chat import ToolCall
from agent_api.domain.errors import InvalidArguments
from agent_api.tools.outcome import ToolOutcome


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


class ExecutionOut(ResponseModel):
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
        """Each outcome as a success or a failure; a failure without a code is `TOOL_FAILED`."""
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
