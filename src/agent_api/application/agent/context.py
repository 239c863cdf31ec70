"""Fitting a conversation into a model's context window before each LLM call.

The unit of dropping is the turn: a user message and everything after it up to the next user
message (answers, tool calls and their results), so a tool call is never separated from its
results. Turns go oldest first. Always kept: every system message (the server's prompts and any
the client sent) and the last user turn with everything after it (the current run's calls and
results). The stored conversation is never changed; only what one request carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from agent_api.application.ports import TokenCounter
from agent_api.domain.chat import ChatMessage, ToolSpec
from agent_api.domain.errors import ContextLengthExceeded


@dataclass(frozen=True, slots=True)
class ContextWindow:
    """One model's budget: `tokens` of context, of which `reserve` stay free for the answer,
    counted with `counter`."""

    tokens: int
    reserve: int
    counter: TokenCounter

    @property
    def prompt_budget(self) -> int:
        return self.tokens - self.reserve


@dataclass(frozen=True, slots=True)
class Fitted:
    """The history a request carries: `messages` in their order, `dropped` the number of
    history messages left out, `tokens` what the whole prompt takes (fixed part included)."""

    messages: tuple[ChatMessage, ...]
    dropped: int
    tokens: int


def fit_history(
    history: Sequence[ChatMessage], costs: Sequence[int], budget: int, fixed: int = 0
) -> Fitted:
    """The newest whole turns of `history` that fit `budget` tokens together with `fixed`
    (what the request carries besides the history: server prompts, tool definitions).
    `costs[i]` is the token count of `history[i]`.

    Guarantees: the result is `history` with whole turns removed from the oldest (system
    messages inside them stay); it keeps every system message and the last user turn with all
    that follows it; its `tokens` is at most `budget`; nothing is dropped when all fits.
    Raises ContextLengthExceeded when even the kept-always part exceeds `budget`.
    """
    if len(costs) != len(history):
        raise ValueError("one cost per message")
    users = [i for i, message in enumerate(history) if message.role == "user"]
    last = users[-1] if users else 0
    # Droppable groups: what precedes the first user message, then each earlier turn.
    starts = sorted({0, *users[:-1]}) if last else []
    groups = list(pairwise([*starts, last]))

    def droppable(start: int, end: int) -> int:
        pairs = zip(history[start:end], costs[start:end], strict=True)
        return sum(cost for message, cost in pairs if message.role != "system")

    always = fixed + sum(costs[last:]) + sum(costs[:last]) - droppable(0, last)
    if always > budget:
        raise ContextLengthExceeded(
            f"the last message needs {always} tokens of context with the system prompt and "
            f"tool definitions; the model's budget is {budget}",
            details={"needed_tokens": always, "budget_tokens": budget},
        )
    total = always + droppable(0, last)
    cut = 0  # history[:cut] loses its non-system messages
    for start, end in groups:
        if total <= budget:
            break
        total -= droppable(start, end)
        cut = end
    kept = tuple(m for i, m in enumerate(history) if i >= cut or m.role == "system")
    return Fitted(kept, len(history) - len(kept), total)


def fit_to_window(
    window: ContextWindow,
    system: Sequence[ChatMessage],
    history: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
) -> Fitted:
    """`history` fitted to `window` after `system` and `tools`, which always go. CPU work
    (tokenizing; the first use of a tokenizer loads it): run it in a worker thread.
    Raises ContextLengthExceeded like `fit_history`."""
    counter = window.counter
    fixed = counter.count_tools(tools) + sum(map(counter.count_message, system))
    costs = [counter.count_message(message) for message in history]
    return fit_history(history, costs, window.prompt_budget, fixed)
