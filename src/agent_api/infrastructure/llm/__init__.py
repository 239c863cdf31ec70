"""Adapters of the ChatModel port: `OpenAICompatibleChatModel` (any OpenAI-compatible
endpoint) and `DemoChatModel` (offline, deterministic)."""

from agent_api.infrastructure.llm.demo import DemoChatModel
from agent_api.infrastructure.llm.openai_compatible import OpenAICompatibleChatModel

__all__ = ["DemoChatModel", "OpenAICompatibleChatModel"]
