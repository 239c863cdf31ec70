"""The request fields of OpenAI's Chat Completions beyond `model` and `messages`, and what the
agent does with each: forwarded unchanged to the upstream on every model call of the run
(`FORWARDED`), used by the server itself (`stream`, `stream_options`, `n=1`, `store`, the
length bounds), or refused with 400 naming the field and why. The client's `tools` and
`tool_choice` are fields of `ChatCompletionRequest`, beside the turn's tools they shape.

Ranges and enumerations are OpenAI's (the official SDK's `CompletionCreateParams`), so a value
OpenAI refuses is refused here before a run starts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agent_api.api.schemas import RequestModel
from agent_api.domain.errors import InvalidRequest

# Forwarded as the client sent them (OpenAI's spelling) on every model call of the run. The
# length bounds are forwarded too, but the agent lowers them to what is left of the run's budget.
FORWARDED: frozenset[str] = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
        "logprobs",
        "top_logprobs",
        "response_format",
        "reasoning_effort",
        "metadata",
        "service_tier",
        "modalities",
        "verbosity",
        "web_search_options",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "safety_identifier",
        "moderation",
        "parallel_tool_calls",
    }
)

MAX_STOP_SEQUENCES = 4
Penalty = Annotated[float, Field(ge=-2, le=2)]
MetadataKey = Annotated[str, Field(max_length=64)]
MetadataValue = Annotated[str, Field(max_length=512)]


class StreamOptions(RequestModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    include_obfuscation: bool | None = Field(
        None, description="Only `false` is accepted: this server never pads stream chunks"
    )


class JSONSchemaFormat(RequestModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextFormat(RequestModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class JSONObjectFormat(RequestModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_object"]


class JSONSchemaResponseFormat(RequestModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[
    TextFormat | JSONObjectFormat | JSONSchemaResponseFormat, Field(discriminator="type")
]


class CompletionParams(RequestModel):
    """Every Chat Completions field but `model` and `messages`. Unknown fields are refused
    (400 "Unrecognized request argument supplied: <name>", `param` = the name)."""

    model_config = ConfigDict(extra="forbid")

    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1)] | None = None
    store: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = (
        None
    )
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    web_search_options: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    safety_identifier: str | None = None
    moderation: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None  # forwarded with the calls that offer tools
    functions: list[dict[str, Any]] | None = None
    function_call: Any = None

    @field_validator("stream", mode="before")
    @classmethod
    def _null_stream(cls, stream: Any) -> Any:
        return False if stream is None else stream  # OpenAI takes `null` for "not streamed"

    @field_validator("stop")
    @classmethod
    def _four_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return stop

    @model_validator(mode="after")
    def _refused(self) -> CompletionParams:
        """Fields the agent cannot honour: 400 naming the field and why."""
        for param, why in _refusals(self):
            raise InvalidRequest(why, param=param)
        return self

    def forwarded(self) -> dict[str, Any]:
        """The forwarded fields the client set, as sent (nulls left out), in OpenAI's JSON."""
        return self.model_dump(
            mode="json",
            include=set(FORWARDED),
            exclude_unset=True,
            exclude_none=True,
            by_alias=True,
        )


def _refusals(params: CompletionParams) -> list[tuple[str, str]]:
    """(param, why) for each refused value, in the order the fields are listed above."""
    checks: list[tuple[bool, str, str]] = [
        (params.n not in (None, 1), "n", "only n=1 is supported: a run answers once"),
        (
            params.store is False,
            "store",
            "store=false is not supported: the server stores every conversation",
        ),
        (
            params.stream_options is not None and not params.stream,
            "stream_options",
            "stream_options is only allowed with stream=true",
        ),
        (
            bool(params.stream_options and params.stream_options.include_obfuscation),
            "stream_options.include_obfuscation",
            "stream obfuscation is not supported; send false or leave it out",
        ),
        (
            params.max_tokens is not None and params.max_completion_tokens is not None,
            "max_tokens",
            "send one of max_tokens and max_completion_tokens, not both",
        ),
        (
            params.top_logprobs is not None and not params.logprobs,
            "top_logprobs",
            "top_logprobs needs logprobs=true",
        ),
        (
            "audio" in (params.modalities or ()),
            "modalities",
            "audio output is not supported: the agent answers in text",
        ),
        (params.audio is not None, "audio", "audio output is not supported: answers are text"),
        (
            params.prediction is not None,
            "prediction",
            "predicted outputs cannot be combined with the agent's tools",
        ),
        (
            params.functions is not None,
            "functions",
            "functions is deprecated and not supported; use tools",
        ),
        (
            params.function_call is not None,
            "function_call",
            "function_call is deprecated and not supported; use tool_choice",
        ),
    ]
    return [(param, why) for refused, param, why in checks if refused]
