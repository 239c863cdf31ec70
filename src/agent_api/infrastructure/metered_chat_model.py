"""MeteredChatModel: wraps any ChatModel to record LLM latency and tokens by model."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from agent_api.application.ports import ChatModel
from agent_api.domain.chat import ChatEvent, ChatRequest, ChatResult, StreamEnd
from agent_api.infrastructure.metrics import Metrics


class MeteredChatModel:
    def __init__(self, inner: ChatModel, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def complete(self, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        try:
            result = await self._inner.complete(request)
        except BaseException:
            self._observe(request.model, started, "error")
            raise
        self._observe(request.model, started, "ok", result)
        return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        started = time.perf_counter()
        outcome = "cancelled"
        try:
            async for event in self._inner.stream(request):
                if isinstance(event, StreamEnd):
                    outcome = "ok"
                    self._observe(request.model, started, outcome, event.result)
                yield event
        except Exception:
            outcome = "error"
            raise
        finally:
            if outcome != "ok":
                self._observe(request.model, started, outcome)

    def _observe(
        self, model: str, started: float, outcome: str, result: ChatResult | None = None
    ) -> None:
        self._metrics.llm_latency.labels(model, outcome).observe(time.perf_counter() - started)
        if result is not None:
            self._metrics.llm_tokens.labels(model, "prompt").inc(result.usage.prompt_tokens)
            self._metrics.llm_tokens.labels(model, "completion").inc(result.usage.completion_tokens)
