"""Fitting a history into a context budget: whole turns dropped oldest first, system prompts and
the last user turn always kept, tool calls never separated from their results."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_api.application.agent.context import ContextWindow, fit_history, fit_to_window
from agent_api.domain.chat import ChatMessage, ToolCall, ToolSpec
from agent_api.domain.errors import ContextLengthExceeded
from tests.unit.fakes import FakeTokenCounter

SYSTEM = ChatMessage.system("be brief")


def user(text: str) -> ChatMessage:
    return ChatMessage.user(text)


def answer(text: str) -> ChatMessage:
    return ChatMessage.assistant(text)


def calling(*ids: str) -> ChatMessage:
    return ChatMessage.assistant(tool_calls=tuple(ToolCall(i, "calculator", "{}") for i in ids))


def result(call_id: str) -> ChatMessage:
    return ChatMessage.tool(call_id, "calculator", "42")


def test_everything_is_kept_when_it_fits() -> None:
    history = [SYSTEM, user("a"), answer("b"), user("c")]
    fitted = fit_history(history, [1] * 4, budget=4)
    assert fitted.messages == tuple(history)
    assert fitted.dropped == 0
    assert fitted.tokens == 4


def test_oldest_turns_go_first_and_whole() -> None:
    history = [
        SYSTEM,
        user("1"),
        calling("c1", "c2"),
        result("c1"),
        result("c2"),
        answer("one"),
        user("2"),
        answer("two"),
        user("3"),
    ]
    fitted = fit_history(history, [1] * len(history), budget=4)
    # The first turn (user, call, both results, answer) goes whole; the second stays.
    assert fitted.messages == (SYSTEM, user("2"), answer("two"), user("3"))
    assert fitted.dropped == 5


def test_the_current_run_after_the_last_user_message_is_always_kept() -> None:
    history = [user("old"), answer("x"), user("now"), calling("c1"), result("c1")]
    fitted = fit_history(history, [10, 10, 1, 1, 1], budget=5, fixed=2)
    assert fitted.messages == (user("now"), calling("c1"), result("c1"))
    assert fitted.tokens == 5


def test_client_system_messages_survive_the_turn_they_are_in() -> None:
    history = [user("a"), ChatMessage.system("later rule"), answer("b"), user("c")]
    fitted = fit_history(history, [5, 1, 5, 1], budget=3)
    assert fitted.messages == (ChatMessage.system("later rule"), user("c"))
    assert fitted.dropped == 2


def test_a_last_turn_that_cannot_fit_is_context_length_exceeded() -> None:
    with pytest.raises(ContextLengthExceeded) as caught:
        fit_history([SYSTEM, user("huge")], [1, 100], budget=50)
    assert caught.value.code.lower() == "context_length_exceeded"
    assert caught.value.param == "messages"
    assert caught.value.details == {"needed_tokens": 101, "budget_tokens": 50}


def test_fixed_parts_count_against_the_budget() -> None:
    with pytest.raises(ContextLengthExceeded):
        fit_history([user("hi")], [3], budget=10, fixed=8)


def test_fit_to_window_counts_system_tools_and_history() -> None:
    counter = FakeTokenCounter(per_message=1)
    window = ContextWindow(tokens=30, reserve=10, counter=counter)
    history = [user("x" * 10), answer("y" * 4), user("z" * 5)]
    tools = [ToolSpec("calculator", "adds")]
    # Budget 30 - 10 = 20: system 9 + tools 1 + last turn 6 = 16; the first turn (11 + 5)
    # does not fit as well, so it goes whole.
    fitted = fit_to_window(window, [SYSTEM], history, tools)
    assert fitted.messages == (user("z" * 5),)
    assert fitted.dropped == 2
    assert fitted.tokens == 16


# --- properties --------------------------------------------------------------------------------

Turn = list[ChatMessage]


@st.composite
def turns(draw: st.DrawFn) -> Turn:
    """One user turn: maybe a system message, the user message, then rounds of tool calls
    (each followed by all its results) and maybe a final answer."""
    index = draw(st.integers(0, 10**6))
    turn: Turn = []
    if draw(st.booleans()):
        turn.append(ChatMessage.system(f"rule {index}"))
    turn.append(user(f"question {index}"))
    for round_ in range(draw(st.integers(0, 2))):
        ids = [f"c{index}-{round_}-{k}" for k in range(draw(st.integers(1, 3)))]
        turn.append(calling(*ids))
        turn.extend(result(i) for i in ids)
    if draw(st.booleans()):
        turn.append(answer(f"answer {index}"))
    return turn


@st.composite
def histories(draw: st.DrawFn) -> list[ChatMessage]:
    """Turns, maybe after a greeting that precedes the first user message."""
    greeting = [answer("hello")] if draw(st.booleans()) else []
    return greeting + [m for turn in draw(st.lists(turns(), min_size=1, max_size=6)) for m in turn]


def is_valid_chat(messages: tuple[ChatMessage, ...]) -> bool:
    """Every tool message answers a call of the assistant message before its run of results,
    and every call is answered."""
    open_calls: set[str] = set()
    for message in messages:
        if message.role == "tool":
            if message.tool_call_id not in open_calls:
                return False
            open_calls.discard(message.tool_call_id)
            continue
        if open_calls:
            return False
        open_calls = {call.id for call in message.tool_calls}
    return not open_calls


@given(histories(), st.data())
def test_fitting_properties(history: list[ChatMessage], data: st.DataObject) -> None:
    n = len(history)
    costs = data.draw(st.lists(st.integers(1, 20), min_size=n, max_size=n))
    budget = data.draw(st.integers(0, sum(costs) + 10))
    fixed = data.draw(st.integers(0, 10))
    last = max(i for i, m in enumerate(history) if m.role == "user")
    always = fixed + sum(costs[last:])
    always += sum(
        c for m, c in zip(history[:last], costs[:last], strict=True) if m.role == "system"
    )
    try:
        fitted = fit_history(history, costs, budget, fixed)
    except ContextLengthExceeded:
        assert always > budget
        return
    assert always <= budget
    kept_ids = {id(m) for m in fitted.messages}
    positions = [i for i, m in enumerate(history) if id(m) in kept_ids]
    assert [id(history[i]) for i in positions] == [id(m) for m in fitted.messages]  # in order
    assert fitted.tokens == fixed + sum(costs[i] for i in positions)
    assert fitted.tokens <= budget
    assert is_valid_chat(fitted.messages)
    dropped = [i for i in range(n) if i not in positions]
    assert fitted.dropped == len(dropped)
    assert all(history[i].role != "system" for i in dropped)  # system prompts always stay
    assert all(i in positions for i in range(last, n))  # the last turn and its run stay
    if not dropped:
        return
    # What went is every non-system message before a turn boundary: whole turns, oldest first.
    cut = dropped[-1] + 1
    assert dropped == [i for i in range(cut) if history[i].role != "system"]
    boundary = next(i for i in range(cut, n) if history[i].role != "system")
    assert history[boundary].role == "user"
    # And no more than needed: keeping the newest dropped turn would not have fitted.
    start = max((i for i in range(cut) if history[i].role == "user"), default=0)
    back = sum(costs[i] for i in range(start, cut) if history[i].role != "system")
    assert fitted.tokens + back > budget
