from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agent_api.domain.chat import ChatMessage, ToolCall
from agent_api.domain.conversations import (
    TITLE_MAX_LENGTH,
    ApprovalRequest,
    PendingToolCall,
    make_title,
    repair_history,
)
from agent_api.domain.errors import InvalidRequest

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def pending(call_id: str) -> PendingToolCall:
    return PendingToolCall(uuid.uuid4(), call_id, "delete_file", {"path": call_id}, "r", NOW)


def test_verdict_applies_to_every_pending_call_by_default() -> None:
    decided = ApprovalRequest(approved=False, reason="no").decide([pending("a"), pending("b")])
    assert [(d.pending.tool_call_id, d.decision.approved) for d in decided] == [
        ("a", False),
        ("b", False),
    ]
    assert all(d.decision.reason == "no" for d in decided)


def test_listed_calls_get_the_verdict_and_the_others_the_opposite() -> None:
    decided = ApprovalRequest(approved=True, tool_call_ids=("b",)).decide(
        [pending("a"), pending("b")]
    )
    assert [d.decision.approved for d in decided] == [False, True]


def test_edited_arguments_replace_the_original_ones() -> None:
    (decided,) = ApprovalRequest(approved=True, arguments={"a": {"path": "safe"}}).decide(
        [pending("a")]
    )
    assert decided.effective_arguments == {"path": "safe"}
    assert decided.pending.arguments == {"path": "a"}


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ApprovalRequest(approved=True, tool_call_ids=("zzz",)), "tool_call_ids"),
        (ApprovalRequest(approved=True, arguments={"zzz": {}}), "tool_call_ids"),
        (ApprovalRequest(approved=False, arguments={"a": {"path": "x"}}), "arguments"),
    ],
)
def test_bad_decisions_are_invalid_requests(request_: ApprovalRequest, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        request_.decide([pending("a")])
    assert caught.value.param == param


def test_title_is_the_first_line_collapsed_and_bounded() -> None:
    assert make_title("  What is\n 1337 * 42? ") == "What is 1337 * 42?"
    long = make_title("x" * 10_000)
    assert len(long) == TITLE_MAX_LENGTH
    assert long.endswith("…")


def test_repair_history_answers_unanswered_calls_and_drops_orphans() -> None:
    call = ToolCall("c1", "calculator", "{}")
    history = [
        ChatMessage(role="user", content="hi"),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="user", content="again"),
        ChatMessage(role="tool", content="{}", tool_call_id="orphan"),
    ]
    repaired = repair_history(history)
    assert [m.role for m in repaired] == ["user", "assistant", "tool", "user"]
    assert repaired[2].tool_call_id == "c1"
    assert "interrupted" in (repaired[2].content or "")


def test_repair_history_keeps_a_valid_sequence_unchanged() -> None:
    call = ToolCall("c1", "calculator", "{}")
    history = [
        ChatMessage(role="user", content="hi"),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", content="{}", tool_call_id="c1"),
        ChatMessage(role="assistant", content="42"),
    ]
    assert repair_history(history) == history


def test_repair_history_leaves_calls_being_resumed_open() -> None:
    calls = (ToolCall("c1", "calculator", "{}"), ToolCall("c2", "delete_file", "{}"))
    history = [
        ChatMessage(role="user", content="hi"),
        ChatMessage(role="assistant", tool_calls=calls),
        ChatMessage(role="tool", content="{}", tool_call_id="c1"),
    ]
    assert repair_history(history, resuming=["c2"]) == history
