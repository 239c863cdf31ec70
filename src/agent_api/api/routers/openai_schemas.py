"""Wire schemas of the OpenAI-compatible surface. A request field is honoured or refused:
unknown fields and values the agent cannot honour are 400 `invalid_request_error` with `param`
(`openai_params` says what each Chat Completions field does). Every string the server keeps is
checked (see `RequestModel`) and, where its column is bounded, bounded here: a tool call id or
a name longer than IDENTIFIER_MAX_LENGTH is refused."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from agent_api.api.routers.openai_content import parse_content
from agent_api.api.routers.openai_params import CompletionParams
from agent_api.api.schemas import IDENTIFIER_MAX_LENGTH, RequestModel
from agent_api.domain.chat import ChatMessage, ToolCall, ToolSpec, TurnOptions
from agent_api.domain.errors import InvalidRequest

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


class ContentPart(RequestModel):
    """An OpenAI content part: `text`; on user messages also `image_url` (https or data:image
    URL, detail auto|low|high), `input_audio` (base64 wav|mp3), `file` (file_data or file_id,
    filename). Typed loosely here so that each field's unstorable text is named where it is;
    the rules are checked by `openai_content`, which also refuses unknown fields."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
        },
    )

    type: Any = None
    text: Any = None
    image_url: Any = None
    input_audio: Any = None
    file: Any = None

    def as_sent(self) -> dict[str, Any]:
        """The part as the client sent it: its given fields and any unknown ones."""
        return self.model_dump(exclude_unset=True)


def _content_kind(value: Any) -> str | None:
    return "text" if isinstance(value, str) else "parts" if isinstance(value, list) else None


# Tagged, so that an error inside a content part names that part (`content.parts.0.text`)
# instead of also reporting that the list is not a string. No length caps: OpenAI has none, and
# the body size and the model's context budget bound what a message can hold.
Content = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[ContentPart], Tag("parts")],
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

    def to_chat(self, index: int) -> ChatMessage:
        """The domain message; content parts are checked here (`openai_content`). Raises
        InvalidRequest naming the offending field (`messages[0].content[1].image_url.url`)."""
        role = "system" if self.role == "developer" else self.role
        if role == "tool" and not self.tool_call_id:
            raise InvalidRequest(
                "tool messages need tool_call_id", param=f"messages[{index}].tool_call_id"
            )
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in self.tool_calls or ()
        )
        text: str | None = None
        parts: tuple[Mapping[str, Any], ...] = ()
        if isinstance(self.content, list):
            sent = [part.as_sent() for part in self.content]
            text, parts = parse_content(sent, role, f"messages[{index}].content")
        else:
            text = self.content
        return ChatMessage(
            role=role,
            content=text,
            tool_calls=calls,
            tool_call_id=self.tool_call_id,
            name=self.name,
            parts=parts,
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
    messages: Annotated[list[MessageIn], Field(min_length=1)]
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
