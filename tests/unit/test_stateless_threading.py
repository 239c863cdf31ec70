"""`continue_or_start` on the fake repository: a client that resends its whole transcript
continues its conversation, storing only what is new; retries never run twice; a branch or
another user's transcript never matches."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from datetime import timedelta

import pytest

from agent_api.application.agent.events import ContentDelta, RunFinished
from agent_api.domain.chat import ChatMessage, ToolCall
from agent_api.domain.conversations import ConversationStatus
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import (
    ConversationBusy,
    DuplicateRequest,
    InvalidRequest,
    ServiceUnavailable,
)
from agent_api.domain.fingerprints import heads
from agent_api.domain.users import Role, User
from tests.unit.agent_fakes import text
from tests.unit.test_client_tool_results import ASK_WEATHER, CLIENT
from tests.unit.test_conversation_service import DELETE, NOW, PRINCIPAL, Harness

OTHER = Principal(
    user=User(uuid.uuid4(), "o@b.c", "O", Role.USER, True, "x", NOW, NOW),
    credential=Credential(CredentialType.SESSION, uuid.uuid4()),
)
SYSTEM = ChatMessage.system("be brief")


def shown(finished: RunFinished) -> ChatMessage:
    """The answer as an SDK echoes it back: `content: ""` when null, arguments re-spaced."""
    answer = finished.answer()
    echoed_calls = tuple(
        ToolCall(c.id, c.name, json.dumps(json.loads(c.arguments), indent=1))
        for c in answer.tool_calls
    )
    return ChatMessage("assistant", answer.content or "", echoed_calls, name="bot")


async def ask(h: Harness, history: list[ChatMessage], who: Principal = PRINCIPAL) -> RunFinished:
    return await (await h.service.continue_or_start(who, history)).result()


async def test_three_stateless_turns_leave_one_conversation_of_six_messages() -> None:
    h = Harness(text("one"), text("two"), text("three"))
    history = [ChatMessage.user("q1")]
    first = await ask(h, history)
    for question in ("q2", "q3"):
        h.repo.round_trips = 0
        history = [*history, shown(first), ChatMessage.user(question)]
        finished = await ask(h, history)
        assert finished.conversation.id == first.conversation.id
        # the new user message in one store call, the answer in another: nothing resent
        assert h.repo.round_trips == 2
        first = finished
    assert len(h.repo.conversations) == 1
    assert h.roles(first.conversation.id) == ["user", "assistant"] * 3
    assert h.slots_free()


async def test_a_new_history_is_stored_in_one_round_trip() -> None:
    h = Harness(text("hi"))
    history = [SYSTEM, ChatMessage.user("a"), ChatMessage.assistant("b"), ChatMessage.user("c")]
    finished = await ask(h, history)
    assert h.roles(finished.conversation.id) == ["system", "user", "assistant", "user", "assistant"]
    assert h.repo.round_trips == 2  # the history, then the answer
    assert [m.seq for m in h.repo.stored[finished.conversation.id]] == [1, 2, 3, 4, 5]


async def test_the_fingerprint_is_the_whole_client_transcript() -> None:
    h = Harness(text("answer"))
    history = [SYSTEM, ChatMessage.user("q")]
    finished = await ask(h, history)
    expected = heads([*history, ChatMessage.assistant("answer")])[-1]
    assert h.repo.conversations[finished.conversation.id].fingerprint == expected


async def test_the_model_sees_the_stored_conversation_not_the_clients_copy() -> None:
    h = Harness(text("one"), text("two"))
    first = await ask(h, [SYSTEM, ChatMessage.user("q1")])
    await ask(h, [SYSTEM, ChatMessage.user("q1"), shown(first), ChatMessage.user("q2")])
    seen = h.chat.requests[-1].messages  # type: ignore[attr-defined]
    assert [(m.role, m.content) for m in seen if m.role != "system"] == [
        ("user", "q1"),
        ("assistant", "one"),
        ("user", "q2"),
    ]


async def test_a_retry_while_the_run_goes_is_a_duplicate_and_writes_nothing() -> None:
    h = Harness(text("x"))
    history = [ChatMessage.user("q")]
    run = await h.service.continue_or_start(PRINCIPAL, history)
    h.slots.holders.clear()  # the run cap is not under test
    with pytest.raises(DuplicateRequest) as raised:
        await h.service.continue_or_start(PRINCIPAL, history)
    assert isinstance(raised.value, ConversationBusy)
    assert len(h.repo.conversations) == 1
    assert h.roles(run.conversation.id) == ["user"]


async def test_a_retry_after_a_failed_run_runs_the_turn_again_storing_nothing_twice() -> None:
    h = Harness(text("x"))
    history = [ChatMessage.user("q")]
    run = await h.service.continue_or_start(PRINCIPAL, history)
    conversation_id = run.conversation.id
    await h.service.fail_expired_runs()  # nothing expired yet
    # the first attempt dies with its process: its lease runs out
    h.repo.conversations[conversation_id] = dataclasses.replace(
        h.repo.conversations[conversation_id], lease_expires_at=NOW - timedelta(seconds=1)
    )
    h.slots.holders.clear()
    assert await h.service.fail_expired_runs() == 1
    finished = await ask(h, history)
    assert finished.conversation.id == conversation_id
    assert finished.final_text == "x"
    assert h.roles(conversation_id) == ["user", "assistant"]
    assert len(h.repo.conversations) == 1


async def test_a_retry_after_the_client_left_drops_the_answer_it_never_saw() -> None:
    h = Harness(text("a long answer"), text("again"))
    history = [ChatMessage.user("q")]
    run = await h.service.continue_or_start(PRINCIPAL, history, stream=True)
    events = run.events()
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, ContentDelta):
                break
    assert h.roles(run.conversation.id) == ["user", "assistant"]  # kept, marked incomplete
    finished = await ask(h, history)
    assert finished.conversation.id == run.conversation.id
    seen = h.chat.requests[-1].messages  # type: ignore[attr-defined]
    assert [m.role for m in seen if m.role != "system"] == ["user"]


async def test_an_edited_earlier_message_branches_into_a_new_conversation() -> None:
    h = Harness(text("one"), text("two"))
    first = await ask(h, [ChatMessage.user("q1")])
    branch = [ChatMessage.user("q1 edited"), shown(first), ChatMessage.user("q2")]
    finished = await ask(h, branch)
    assert finished.conversation.id != first.conversation.id
    assert h.roles(finished.conversation.id) == ["user", "assistant", "user", "assistant"]
    assert h.roles(first.conversation.id) == ["user", "assistant"]


async def test_an_answer_the_server_never_gave_is_a_branch() -> None:
    h = Harness(text("one"), text("two"))
    first = await ask(h, [ChatMessage.user("q1")])
    history = [ChatMessage.user("q1"), ChatMessage.assistant("made up"), ChatMessage.user("q2")]
    finished = await ask(h, history)
    assert finished.conversation.id != first.conversation.id


async def test_another_users_identical_transcript_never_matches() -> None:
    h = Harness(text("one"))
    mine = await ask(h, [ChatMessage.user("q1")])
    h.slots.holders.clear()
    theirs = await ask(h, [ChatMessage.user("q1"), shown(mine), ChatMessage.user("q2")], OTHER)
    assert theirs.conversation.id != mine.conversation.id
    assert theirs.conversation.user_id == OTHER.user.id


async def test_the_longest_match_wins() -> None:
    h = Harness(text("one"), text("two"), text("three"))
    first = await ask(h, [ChatMessage.user("q1")])
    two = [ChatMessage.user("q1"), shown(first), ChatMessage.user("q2")]
    second = await ask(h, two)
    # a more recent conversation holding only the first exchange (a branch made earlier)
    shorter = dataclasses.replace(
        h.repo.conversations[first.conversation.id],
        id=uuid.uuid4(),
        fingerprint=heads([ChatMessage.user("q1"), shown(first)])[-1],
        updated_at=NOW + timedelta(hours=1),
    )
    await h.repo.create(shorter)
    third = await ask(h, [*two, shown(second), ChatMessage.user("q3")])
    assert third.conversation.id == first.conversation.id


async def test_a_native_run_clears_the_fingerprint() -> None:
    h = Harness(text("one"), text("two"))
    first = await ask(h, [ChatMessage.user("q1")])
    await (await h.service.send(PRINCIPAL, first.conversation.id, "native")).result()
    assert h.repo.conversations[first.conversation.id].fingerprint is None
    again = await ask(h, [ChatMessage.user("q1"), shown(first), ChatMessage.user("q2")])
    assert again.conversation.id != first.conversation.id


async def test_a_paused_conversation_is_busy_for_a_stateless_turn() -> None:
    h = Harness(DELETE, text("x"))
    paused = await ask(h, [ChatMessage.user("delete x")])
    assert paused.conversation.status is ConversationStatus.PENDING_APPROVAL
    with pytest.raises(ConversationBusy):
        await ask(h, [ChatMessage.user("delete x"), shown(paused), ChatMessage.user("well?")])


async def test_a_stateless_client_tool_loop_resumes_the_parked_run() -> None:
    h = Harness(ASK_WEATHER, text("3 degrees in Oslo"), text("you are welcome"))
    history = [ChatMessage.user("weather in Oslo?")]
    parked = await (await h.service.continue_or_start(PRINCIPAL, history, options=CLIENT)).result()
    assert parked.conversation.status is ConversationStatus.AWAITING_TOOLS
    answer = shown(parked)
    result = ChatMessage("tool", '{"celsius": 3}', tool_call_id=answer.tool_calls[0].id)
    history = [*history, answer, result]
    run = await h.service.continue_or_start(PRINCIPAL, history, options=CLIENT)
    finished = await run.result()
    assert finished.conversation.id == parked.conversation.id
    assert finished.final_text == "3 degrees in Oslo"
    assert h.roles(parked.conversation.id) == ["user", "assistant", "tool", "assistant"]
    history = [*history, shown(finished), ChatMessage.user("thanks")]
    thanked = await ask(h, history)
    assert thanked.conversation.id == parked.conversation.id
    assert len(h.repo.conversations) == 1


async def test_tool_results_for_a_conversation_waiting_for_an_approval_are_busy() -> None:
    h = Harness(DELETE)
    paused = await ask(h, [ChatMessage.user("delete x")])
    answer = shown(paused)
    result = ChatMessage("tool", "done", tool_call_id=answer.tool_calls[0].id)
    with pytest.raises(ConversationBusy):
        await ask(h, [ChatMessage.user("delete x"), answer, result])


async def test_a_transcript_not_ending_with_a_user_turn_is_refused() -> None:
    h = Harness(text("x"))
    with pytest.raises(InvalidRequest):
        await ask(h, [ChatMessage.user("q"), ChatMessage.assistant("a")])
    with pytest.raises(InvalidRequest):
        await ask(h, [ChatMessage.user("")])
    assert h.repo.conversations == {}


async def test_a_history_that_could_not_be_stored_is_never_matched() -> None:
    h = Harness(text("x"))
    h.repo.fail_on_append = ServiceUnavailable("db down", retry_after=1)
    with pytest.raises(ServiceUnavailable):
        await ask(h, [ChatMessage.user("q")])
    (failed,) = h.repo.conversations.values()
    assert failed.fingerprint is None
    h.repo.fail_on_append = None
    retried = await ask(h, [ChatMessage.user("q")])
    assert retried.conversation.id != failed.id
    assert h.roles(retried.conversation.id) == ["user", "assistant"]


async def test_new_messages_that_could_not_be_stored_are_sent_again() -> None:
    h = Harness(text("one"), text("two"))
    first = await ask(h, [ChatMessage.user("q1")])
    before = h.repo.conversations[first.conversation.id].fingerprint
    history = [ChatMessage.user("q1"), shown(first), ChatMessage.user("q2")]
    h.repo.fail_on_append = ServiceUnavailable("db down", retry_after=1)
    with pytest.raises(ServiceUnavailable):
        await ask(h, history)
    assert h.repo.conversations[first.conversation.id].fingerprint == before
    h.repo.fail_on_append = None
    finished = await ask(h, history)
    assert finished.conversation.id == first.conversation.id
    assert h.roles(first.conversation.id) == ["user", "assistant"] * 2
