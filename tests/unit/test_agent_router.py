from __future__ import annotations

import pytest

from agent_api.application.agent.router import SYSTEM_PROMPTS, resolve_agent, route
from agent_api.domain.conversations import AgentType


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Hello there", AgentType.GENERAL),
        ("Please debug this function", AgentType.CODER),
        ("search the latest news", AgentType.RESEARCHER),
        # Whole words only: the original routed these by substring.
        ("What is the capital of France?", AgentType.RESEARCHER),  # "what is", not "api"
        ("Tell me about the capital of France", AgentType.GENERAL),
        ("a classic prefix", AgentType.GENERAL),
        # Scored: more coder words than researcher words picks the coder.
        ("find the bug in this code and fix the function", AgentType.CODER),
        ("Implement a class for the API", AgentType.CODER),
        ("Who is the current president? Search the news", AgentType.RESEARCHER),
    ],
)
def test_route_uses_whole_words_and_scores(message: str, expected: AgentType) -> None:
    assert route(message) is expected


def test_fixed_agent_type_wins_over_keywords() -> None:
    assert resolve_agent(AgentType.CODER, "search the news") is AgentType.CODER
    assert resolve_agent(AgentType.AUTO, "search the news") is AgentType.RESEARCHER


def test_system_prompts_are_the_originals_word_for_word() -> None:
    assert SYSTEM_PROMPTS[AgentType.GENERAL] == (
        "You are a helpful AI assistant. Be concise, accurate, and helpful.\n"
        "When you need current information, use the web_search tool.\n"
        "When asked to calculate something, use the calculator tool."
    )
    assert SYSTEM_PROMPTS[AgentType.CODER].startswith("You are an expert programmer.")
    assert SYSTEM_PROMPTS[AgentType.RESEARCHER].endswith(
        "Present balanced perspectives on controversial topics."
    )
