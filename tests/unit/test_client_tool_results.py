"""The conversation service with the client's own tools: a run parks `awaiting_tools`, the
client's results resume it, and everything else is refused while it waits."""

from __future__ import annotations

import uuid

import pytest

from agent_api.domain.chat import ChatMessage, ToolSpec, TurnOptions
from agent_api.domain.conversations import ApprovalRequest, ConversationStatus
from agent_api.domain.errors import (
    ConversationBusy,
    InvalidRequest,
    NotFound,
    NotPendingApproval,
    ServiceUnavailable,
)
from tests.unit.agent_fakes import calls, text
from tests.unit.test_conversation_service import DELETE, HELLO, PRINCIPAL, Harness

WEATHER = ToolSpec("get_weather", "the weather in a city", {"type": "object"})
CLIENT = TurnOptions(client_tools=(WEATHER,))
ASK_WEATHER = calls(("c1", "get_weather", {"city": "Oslo"}))
RESULT = [ChatMessage.tool("c1", "get_weather", '{"celsius": 3}')]


async def parked(h: Harness) -> uuid.UUID:
    finished = await (await h.service.start(PRINCIPAL, HELLO, options=CLIENT)).result()
    assert finished.conversation.status is ConversationStatus.AWAITING_TOOLS
    return finished.conversation.id


async def test_a_client_call_parks_the_run_and_is_the_answer() -> None:
    h = Harness(ASK_WEATHER, text("never"))
    finished = await (await h.service.start(PRINCIPAL, HELLO, options=CLIENT)).result()
    assert finished.finish_reason == "tool_calls"
    assert [c.id for c in finished.answer().tool_calls] == ["c1"]
    assert h.status(finished.conversation.id) is ConversationStatus.AWAITING_TOOLS
    assert h.slots_free()


async def test_results_resume_the_run_at_think_on_the_stored_history() -> None:
    h = Harness(ASK_WEATHER, text("3 degrees in Oslo"))
    conversation_id = await parked(h)
    run = await h.service.submit_tool_results(PRINCIPAL, conversation_id, RESULT, options=CLIENT)
    finished = await run.result()
    assert finished.final_text == "3 degrees in Oslo"
    assert finished.finish_reason == "stop"
    assert h.roles(conversation_id) == ["user", "assistant", "tool", "assistant"]
    stored = h.repo.stored[conversation_id][2]
    assert (stored.tool_call_id, stored.content) == ("c1", '{"celsius": 3}')
    assert h.status(conversation_id) is ConversationStatus.ACTIVE
    assert h.slots_free()


@pytest.mark.parametrize(
    ("results", "named"),
    [
        ([ChatMessage.tool("c9", "get_weather", "{}")], "c9"),
        ([], "c1"),
        ([*RESULT, *RESULT], "c1"),
    ],
)
async def test_results_that_do_not_answer_the_open_calls_are_refused(
    results: list[ChatMessage], named: str
) -> None:
    h = Harness(ASK_WEATHER, text("x"))
    conversation_id = await parked(h)
    with pytest.raises(InvalidRequest) as caught:
        await h.service.submit_tool_results(PRINCIPAL, conversation_id, results, options=CLIENT)
    assert caught.value.param == "messages"
    assert named in caught.value.message
    # Nothing stored, still waiting, the slot given back.
    assert h.roles(conversation_id) == ["user", "assistant"]
    assert h.status(conversation_id) is ConversationStatus.AWAITING_TOOLS
    assert h.slots_free()


async def test_a_new_user_turn_is_refused_while_results_are_awaited() -> None:
    h = Harness(ASK_WEATHER, text("x"))
    conversation_id = await parked(h)
    with pytest.raises(InvalidRequest) as caught:
        await h.service.send(PRINCIPAL, conversation_id, "never mind")
    assert "c1" in caught.value.message
    assert h.roles(conversation_id) == ["user", "assistant"]
    with pytest.raises(NotPendingApproval):
        await h.service.approve(PRINCIPAL, conversation_id, ApprovalRequest(True))
    assert h.slots_free()


async def test_results_for_an_idle_or_foreign_conversation_are_refused() -> None:
    h = Harness(text("hi"))
    idle = (await (await h.service.start(PRINCIPAL, HELLO)).result()).conversation.id
    with pytest.raises(InvalidRequest):
        await h.service.submit_tool_results(PRINCIPAL, idle, RESULT)
    with pytest.raises(NotFound):
        await h.service.submit_tool_results(PRINCIPAL, uuid.uuid4(), RESULT)
    assert h.slots_free()


async def test_results_while_a_run_is_going_are_busy() -> None:
    h = Harness(ASK_WEATHER, text("x"))
    conversation_id = await parked(h)
    await h.service.submit_tool_results(PRINCIPAL, conversation_id, RESULT)  # not run yet
    h.slots.holders.clear()
    with pytest.raises(ConversationBusy):
        await h.service.submit_tool_results(PRINCIPAL, conversation_id, RESULT)


async def test_results_that_cannot_be_stored_fail_the_conversation() -> None:
    h = Harness(ASK_WEATHER, text("x"))
    conversation_id = await parked(h)
    h.repo.fail_on_append = ServiceUnavailable("db down", retry_after=1)
    with pytest.raises(ServiceUnavailable):
        await h.service.submit_tool_results(PRINCIPAL, conversation_id, RESULT)
    assert h.status(conversation_id) is ConversationStatus.FAILED
    assert h.slots_free()


async def test_a_client_tool_named_like_a_server_tool_is_refused_before_anything() -> None:
    h = Harness(text("x"))
    clash = TurnOptions(client_tools=(ToolSpec("calculator", "mine"),))
    with pytest.raises(InvalidRequest) as caught:
        await h.service.start(PRINCIPAL, HELLO, options=clash)
    assert caught.value.param == "tools"
    assert h.repo.conversations == {}
    assert h.slots_free()


async def test_an_approval_pause_with_client_tools_is_text_not_calls() -> None:
    h = Harness(DELETE, text("x"))
    finished = await (await h.service.start(PRINCIPAL, HELLO, options=CLIENT)).result()
    assert h.status(finished.conversation.id) is ConversationStatus.PENDING_APPROVAL
    assert finished.finish_reason == "stop"
    answer = finished.answer()
    assert answer.tool_calls == ()
    assert answer.content is not None
    assert "delete_file" in answer.content
    assert [p.tool_call_id for p in finished.pending] == ["d1"]


async def test_an_approval_pause_without_client_tools_still_shows_the_calls() -> None:
    h = Harness(DELETE, text("x"))
    finished = await (await h.service.start(PRINCIPAL, HELLO)).result()
    assert finished.finish_reason == "tool_calls"
    assert [c.id for c in finished.answer().tool_calls] == ["d1"]


async def test_a_mixed_step_resumes_with_every_call_answered_once() -> None:
    mixed = calls(("s1", "calculator", {"expression": "1+1"}), ("c1", "get_weather", {}))
    h = Harness(mixed, text("done"))
    conversation_id = await parked(h)
    run = await h.service.submit_tool_results(PRINCIPAL, conversation_id, RESULT, options=CLIENT)
    await run.result()
    model_saw = h.chat.requests[-1].messages
    answers = [m.tool_call_id for m in model_saw if m.role == "tool"]
    assert answers == ["s1", "c1"]
    assert "not executed" not in "".join(m.content or "" for m in model_saw)
