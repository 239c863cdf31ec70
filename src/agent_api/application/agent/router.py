"""The router: which of the three agents answers a turn, and with which system prompt.

Keyword rules of the original, fixed: whole words and phrases only ("capital" is not "api"),
and coder and researcher are scored instead of the researcher list always winning. The three
system prompts are the original's, word for word.
"""

from __future__ import annotations

import re

from agent_api.domain.conversations import AgentType

SYSTEM_PROMPTS: dict[AgentType, str] = {
    AgentType.GENERAL: "\n".join(
        [
            "You are a helpful AI assistant. Be concise, accurate, and helpful.",
            "When you need current information, use the web_search tool.",
            "When asked to calculate something, use the calculator tool.",
        ]
    ),
    AgentType.CODER: "\n".join(
        [
            "You are an expert programmer. Write clean, efficient, well-documented code.",
            "Always explain your code and consider edge cases.",
            "Use appropriate tools to validate or test code when available.",
        ]
    ),
    AgentType.RESEARCHER: "\n".join(
        [
            "You are a research assistant. Search for accurate, up-to-date information.",
            "Always cite your sources and verify claims using the web_search tool.",
            "Present balanced perspectives on controversial topics.",
        ]
    ),
}

_KEYWORDS: dict[AgentType, tuple[str, ...]] = {
    AgentType.CODER: ("code", "function", "program", "debug", "fix", "implement", "class", "api"),
    AgentType.RESEARCHER: (
        "search",
        "find",
        "research",
        "what is",
        "who is",
        "latest",
        "news",
        "current",
    ),
}
_PATTERNS = {
    agent: [re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE) for word in words]
    for agent, words in _KEYWORDS.items()
}


def route(message: str) -> AgentType:
    """The agent for `message`: the one whose keywords occur most often as whole words or
    phrases; coder wins a tie (its words are the more specific); general when none occur."""
    scores = {
        agent: sum(len(pattern.findall(message)) for pattern in patterns)
        for agent, patterns in _PATTERNS.items()
    }
    coder, researcher = scores[AgentType.CODER], scores[AgentType.RESEARCHER]
    if coder == researcher == 0:
        return AgentType.GENERAL
    return AgentType.CODER if coder >= researcher else AgentType.RESEARCHER


def resolve_agent(fixed: AgentType, message: str) -> AgentType:
    """The conversation's own agent unless it is `auto`, then the router's choice."""
    return route(message) if fixed is AgentType.AUTO else fixed
