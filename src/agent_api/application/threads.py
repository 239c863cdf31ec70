"""Stateless threading: which stored conversation a request without a conversation id
continues, and what its messages ask of it.

A client that keeps no conversation id sends its whole transcript every time. The transcript
is matched, not trusted: its prefixes are fingerprinted (`domain.fingerprints`) and looked up
among the user's conversations, whose fingerprint is the head of the transcript their client
was last shown. The longest match wins; what follows it are the request's new messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from uuid import UUID

from agent_api.application.ports import ConversationRepository
from agent_api.domain.chat import ChatMessage
from agent_api.domain.conversations import Conversation
from agent_api.domain.fingerprints import heads, resumable_prefixes


class Step(Enum):
    """What a stateless request asks of the conversation it matched."""

    START = "start"  # no match, or the client's copy diverged: a new conversation
    RETRY = "retry"  # the very request the conversation last took, again
    TURN = "turn"  # new user (and system) messages: the next turn
    TOOL_RESULTS = "tool_results"  # tool messages answering the client's own tool calls


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """`conversation` holds the first `known` messages of the request (None: no match);
    `request_head` is the fingerprint of the whole request."""

    conversation: Conversation | None
    known: int
    request_head: str

    def step(self, history: Sequence[ChatMessage]) -> Step:
        """What the request's messages after the match ask for. New messages mixing roles
        (an assistant message the conversation never produced, tool results followed by a
        user message) mean the client's copy diverged from the stored one: a new
        conversation, never a guess."""
        if self.conversation is None:
            return Step.START
        new = history[self.known :]
        if not new:
            return Step.RETRY
        roles = {m.role for m in new}
        if roles <= {"user", "system"} and new[-1].role == "user":
            return Step.TURN
        if roles == {"tool"}:
            return Step.TOOL_RESULTS
        return Step.START


async def find_thread(
    repo: ConversationRepository, user_id: UUID, history: Sequence[ChatMessage]
) -> ThreadMatch:
    """The user's conversation holding the longest resumable prefix of `history`, in one
    query; work beyond hashing is independent of the history's length."""
    chain = heads(history)
    lengths = resumable_prefixes(history)
    candidates = [chain[k - 1] for k in lengths]
    found = await repo.find_thread(user_id, candidates)
    if found is None:
        return ThreadMatch(None, 0, chain[-1])
    known = next(k for k in lengths if chain[k - 1] == found.fingerprint)
    return ThreadMatch(found, known, chain[-1])
