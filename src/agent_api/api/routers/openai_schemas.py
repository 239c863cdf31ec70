"""Wire schemas of the OpenAI-compatible surface. A request field is honoured or refused:
unknown fields and values the agent cannot honour are 400 `invalid_request_error` with `param`
(`openai_params` says what each Chat Completions field does). Every string the server keeps is
checked (see `RequestModel`) and, where its column is bounded, bounded here: a tool call id or
a name longer than IDENTIFIER_MAX_LENGTH is refused."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from agent_api.api.routers.openai_params import CompletionParams
from agent_api.api.schemas import IDENTIFIER_MAX_LENGTH, RequestModel
from agent_api.domain.chat import ChatMessage, ToolCall, ToolSpec, TurnOptions
from agent_api.domain.conversations import MESSAGE_MAX_LENGTH
from agent_api.domain.errors import InvalidRequest

MAX_MESSAGES = 1000
Identifier = Annotated[str, Field(max_length=IDENTIFIER_MAX_LENGTH)]
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # OpenAI's rule for function names


class FunctionCallIn(RequestModel):
    name: Identifier
    arguments: str = ""


class ToolCallIn(RequestModel):
    model_config = ConfigDict(extra="allow")

    id: Identifier
    type: Literal["function"] = "function"
    function: FunctionCallIn


class TextPart(RequestModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


def _content_kind(value: Any) -> str | None:
    return "text" if isinstance(value, str) else "parts" if isinstance(value, list) else None


# Tagged, so that an error inside a content part names that part (`content.parts.0.text`)
# instead of also reporting that the list is not a string.
Content = Annotated[
    Annotated[Annotated[str, Field(max_length=MESSAGE_MAX_LENGTH)], Tag("text")]
    | Annotated[list[TextPart], Tag("parts")],
    Discriminator(
        _content_kind,
        custom_error_type="content_type",
        custom_error_message="content must be a string or a list of content parts",
    ),
]


class MessageIn(RequestModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["developer", "system", "user", "assistant", "tool"]
    content: Content | None = None
    name: Identifier | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: Identifier | None = None

    def text(self, index: int) -> str | None:
        """The content as text. Raises InvalidRequest for non-text parts (images, audio)."""
        if self.content is None or isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise InvalidRequest(
                    f"content part type '{part.type}' is not supported; send text",
                    param=f"messages[{index}].content",
                )
            texts.append(part.text)
        return "".join(texts)

    def to_chat(self, index: int) -> ChatMessage:
        role = "system" if self.role == "developer" else self.role
        if role == "tool" and not self.tool_call_id:
            raise InvalidRequest(
                "tool messages need tool_call_id", param=f"messages[{index}].tool_call_id"
            )
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in self.tool_calls or ()
        )
        return ChatMessage(
            role=role,
            content=self.text(index),
            tool_calls=calls,
            tool_call_id=self.tool_call_id,
            name=self.name,
        )


class FunctionIn(RequestModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(RequestModel):
    """A client tool. Only `function` tools exist here; other types are refused by name."""

    type: str
    function: FunctionIn | None = None

    def to_spec(self, index: int) -> ToolSpec:
        if self.type != "function" or self.function is None:
            raise InvalidRequest(
                f"tool type '{self.type}' is not supported; send function tools",
                param=f"tools[{index}].type",
            )
        function = self.function
        if not FUNCTION_NAME.fullmatch(function.name):
            raise InvalidRequest(
                "a function name is 1 to 64 letters, digits, '_' or '-'",
                param=f"tools[{index}].function.name",
            )
        return ToolSpec(
            function.name, function.description or "", function.parameters or {}, function.strict
        )


class NamedFunction(RequestModel):
    name: str


class NamedToolChoice(RequestModel):
    type: Literal["function"]
    function: NamedFunction


class ChatCompletionRequest(CompletionParams):
    """The OpenAI body. Extension: `conversation_id` continues a stored conversation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "demo", "messages": [{"role": "user", "content": "What is 1337 * 42?"}]}
            ]
        },
    )

    model: Annotated[str, Field(min_length=1, max_length=IDENTIFIER_MAX_LENGTH)]
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=MAX_MESSAGES)]
    tools: list[ToolIn] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    conversation_id: UUID | None = Field(
        None, description="Extension: continue this stored conversation"
    )

    def chat_messages(self) -> list[ChatMessage]:
        return [m.to_chat(i) for i, m in enumerate(self.messages)]

    def turn_options(self) -> TurnOptions:
        """What the turn's model calls get: the client's tools and tool choice, the forwarded
        fields as sent (`parallel_tool_calls` among them), and the run's length budget
        (`max_completion_tokens`, else `max_tokens`). Raises InvalidRequest naming the field
        (a tool of another type, a bad or repeated name); whether a choice names an offered
        function is checked with the server's tools (`TurnOptions.offer`)."""
        choice = self.tool_choice or "auto"
        return TurnOptions(
            client_tools=tuple(tool.to_spec(i) for i, tool in enumerate(self.tools or ())),
            tool_choice=choice if isinstance(choice, str) else choice.function.name,
            upstream=self.forwarded(),
            max_completion_tokens=self.max_completion_tokens or self.max_tokens,
        )


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


def usage_dict(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
