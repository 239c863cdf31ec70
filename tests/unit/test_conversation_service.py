"""The conversation service on the fake repository, handler by handler: what each run leaves
behind (status, messages, decisions) and that its claim and run slot are always given back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agent_api.application.agent.events import ContentDelta, RunFinished
from agent_api.application.agent.graph import build_agent_graph
from agent_api.application.conversations import ConversationService
from agent_api.application.models import ModelCatalog
from agent_api.application.run_slots import RunSlotService
from agent_api.domain.chat import (
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    TextDelta,
    ToolSpec,
)
from agent_api.domain.conversations import ApprovalRequest, ConversationStatus
from agent_api.domain.credentials import Credential, CredentialType, Principal
from agent_api.domain.errors import (
    ConversationBusy,
    InvalidRequest,
    ModelNotFound,
    NotPendingApproval,
    ServiceUnavailable,
    UpstreamFailed,
)
from agent_api.domain.users import Role, User
from tests.unit.agent_fakes import FakeTools, ScriptedChatModel, calls, text
from tests.unit.fakes import FakeConversationRepository, FakeRunSlots

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRINCIPAL = Principal(
    user=User(uuid.uuid4(), "a@b.c", "A", Role.USER, True, "x", NOW, NOW),
    credential=Credential(CredentialType.SESSION, uuid.uuid4()),
)
HELLO = [ChatMessage(role="user", content="hello")]
DELETE = calls(("d1", "delete_file", {"path": "x"}))


class FailingChatModel(ScriptedChatModel):
    async def complete(self, request: ChatRequest) -> ChatResult:
        raise UpstreamFailed("the model is down")


class StallingChatModel(ScriptedChatModel):
    """Streams the first word of its first answer, then waits until cancelled (a model still
    talking when the client leaves); later answers stream whole."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        if len(self.requests) > 0:
            async for event in super().stream(request):
                yield event
            return
        result = self._next(request)
        yield TextDelta((result.message.content or "").split(" ")[0] + " ")
        await asyncio.Event().wait()


class Harness:
    def __init__(self, *results: ChatResult, chat: ScriptedChatModel | None = None) -> None:
        self.repo = FakeConversationRepository()
        self.tools = FakeTools()
        self.slots = FakeRunSlots()
        chat = chat or ScriptedChatModel(*results)
        self.chat = chat
        self.service = ConversationService(
            self.repo,
            build_agent_graph(chat, self.tools, 3, 2),
            lambda principal: (ToolSpec("calculator", "math", {"type": "object"}),),
            ModelCatalog(["fake"], "fake"),
            clock=lambda: NOW,
            max_iterations=3,
            lease=timedelta(seconds=60),
            run_slots=RunSlotService(
                self.slots, per_credential=1, per_user=1, lease=timedelta(seconds=60)
            ),
        )

    def status(self, conversation_id: uuid.UUID) -> ConversationStatus:
        return self.repo.conversations[conversation_id].status

    def slots_free(self) -> bool:
        return not any(self.slots.holders.values())

    def roles(self, conversation_id: uuid.UUID) -> list[str]:
        return [m.role for m in self.repo.stored[conversation_id]]

    async def paused(self) -> uuid.UUID:
        """A conversation waiting for the approval of `delete_file`."""
        finished = await (await self.service.start(PRINCIPAL, HELLO)).result()
        assert finished.conversation.status is ConversationStatus.PENDING_APPROVAL
        return finished.conversation.id


async def test_start_answers_and_hands_the_conversation_back() -> None:
    h = Harness(text("hi there"))
    finished = await (await h.service.start(PRINCIPAL, HELLO)).result()
    assert finished.final_text == "hi there"
    assert finished.finish_reason == "stop"
    assert h.status(finished.conversation.id) is ConversationStatus.ACTIVE
    assert h.roles(finished.conversation.id) == ["user", "assistant"]
    assert h.repo.usage == [("fake", 10, 5)]
    assert h.slots_free()


async def test_start_refuses_a_history_without_a_user_turn() -> None:
    h = Harness(text("x"))
    with pytest.raises(InvalidRequest):
        await h.service.start(PRINCIPAL, [ChatMessage(role="assistant", content="hi")])
    assert h.repo.conversations == {}
    assert h.slots_free()


async def test_start_marks_failed_when_the_history_cannot_be_stored() -> None:
    h = Harness(text("x"))
    h.repo.fail_on_append = ServiceUnavailable("db down", retry_after=1)
    with pytest.raises(ServiceUnavailable):
        await h.service.start(PRINCIPAL, HELLO)
    (conversation,) = h.repo.conversations.values()
    assert conversation.status is ConversationStatus.FAILED
    assert conversation.run_id is None
    assert h.slots_free()


async def test_a_failing_model_fails_the_run_and_releases_it() -> None:
    h = Harness(chat=FailingChatModel(text("never")))
    run = await h.service.start(PRINCIPAL, HELLO)
    with pytest.raises(UpstreamFailed):
        await run.result()
    assert h.status(run.conversation.id) is ConversationStatus.FAILED
    assert h.slots_free()


async def test_send_continues_the_conversation() -> None:
    h = Harness(text("first"), text("second"))
    first = await (await h.service.start(PRINCIPAL, HELLO)).result()
    finished = await (await h.service.send(PRINCIPAL, first.conversation.id, "again")).result()
    assert finished.final_text == "second"
    assert h.roles(first.conversation.id) == ["user", "assistant", "user", "assistant"]
    assert h.status(first.conversation.id) is ConversationStatus.ACTIVE
    assert h.slots_free()


async def test_send_to_a_running_conversation_is_busy_and_writes_nothing() -> None:
    h = Harness(text("x"))
    run = await h.service.start(PRINCIPAL, HELLO)
    h.slots.holders.clear()  # the cap is not what is under test here
    with pytest.raises(ConversationBusy):
        await h.service.send(PRINCIPAL, run.conversation.id, "again")
    assert h.roles(run.conversation.id) == ["user"]


async def test_send_with_an_unknown_model_leaves_the_conversation_usable() -> None:
    h = Harness(text("x"))
    first = await (await h.service.start(PRINCIPAL, HELLO)).result()
    with pytest.raises(ModelNotFound):
        await h.service.send(PRINCIPAL, first.conversation.id, "again", model="nope")
    assert h.status(first.conversation.id) is ConversationStatus.ACTIVE
    assert h.slots_free()


async def test_a_pause_for_approval_then_approve_runs_the_call_with_edits() -> None:
    h = Harness(DELETE, text("deleted"))
    conversation_id = await h.paused()
    assert h.slots_free()
    request = ApprovalRequest(approved=True, arguments={"d1": {"path": "y"}})
    finished = await (await h.service.approve(PRINCIPAL, conversation_id, request)).result()
    assert h.tools.ran == [("delete_file", {"path": "y"})]
    assert finished.final_text == "deleted"
    assert h.status(conversation_id) is ConversationStatus.ACTIVE
    assert [d.decision.approved for d in h.repo.decisions] == [True]
    assert h.slots_free()


async def test_reject_answers_the_model_with_the_reason() -> None:
    h = Harness(DELETE, text("kept it"))
    conversation_id = await h.paused()
    request = ApprovalRequest(approved=False, reason="keep it")
    finished = await (await h.service.approve(PRINCIPAL, conversation_id, request)).result()
    assert h.tools.ran == []
    rejection = h.repo.stored[conversation_id][-2]
    assert rejection.role == "tool"
    assert "rejected by the user: keep it" in (rejection.content or "")
    assert finished.final_text == "kept it"


async def test_a_bad_decision_or_a_second_approval_changes_nothing() -> None:
    h = Harness(DELETE, text("done"))
    conversation_id = await h.paused()
    bad = ApprovalRequest(approved=True, tool_call_ids=("nope",))
    with pytest.raises(InvalidRequest):
        await h.service.approve(PRINCIPAL, conversation_id, bad)
    assert h.status(conversation_id) is ConversationStatus.PENDING_APPROVAL
    assert h.slots_free()
    await (await h.service.approve(PRINCIPAL, conversation_id, ApprovalRequest(True))).result()
    with pytest.raises(NotPendingApproval):
        await h.service.approve(PRINCIPAL, conversation_id, ApprovalRequest(True))
    assert h.slots_free()


async def test_approve_marks_failed_when_the_rejection_cannot_be_stored() -> None:
    h = Harness(DELETE, text("x"))
    conversation_id = await h.paused()
    h.repo.fail_on_append = ServiceUnavailable("db down", retry_after=1)
    with pytest.raises(ServiceUnavailable):
        await h.service.approve(PRINCIPAL, conversation_id, ApprovalRequest(False))
    assert h.status(conversation_id) is ConversationStatus.FAILED
    assert h.slots_free()


async def test_a_client_gone_mid_stream_hands_the_conversation_back() -> None:
    h = Harness(chat=StallingChatModel(text("a long answer in words"), text("still here")))
    run = await h.service.start(PRINCIPAL, HELLO, stream=True)
    events = run.events()
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, ContentDelta):
                break
    conversation_id = run.conversation.id
    assert h.status(conversation_id) is ConversationStatus.ACTIVE
    assert h.repo.conversations[conversation_id].run_id is None
    assert h.slots_free()
    # What was said before the cut is kept, marked as cut short.
    partial = h.repo.stored[conversation_id][-1]
    assert partial.role == "assistant"
    assert partial.is_complete is False
    assert partial.content == "a "
    # ... and the conversation takes the next turn.
    finished = await (await h.service.send(PRINCIPAL, conversation_id, "again")).result()
    assert finished.final_text == "still here"
    assert h.roles(conversation_id) == ["user", "assistant", "user", "assistant"]
    assert h.repo.stored[conversation_id][-1].is_complete is True
    assert h.status(conversation_id) is ConversationStatus.ACTIVE
    assert h.slots_free()


async def test_the_last_event_is_the_result() -> None:
    h = Harness(text("hi"))
    events = [e async for e in (await h.service.start(PRINCIPAL, HELLO)).events()]
    assert isinstance(events[-1], RunFinished)
    assert events[-1].conversation.status is ConversationStatus.ACTIVE


async def test_the_fake_repository_claims_compare_and_set() -> None:
    h = Harness(text("x"))
    first = await (await h.service.start(PRINCIPAL, HELLO)).result()
    conversation_id, user_id = first.conversation.id, PRINCIPAL.user.id
    lease = timedelta(seconds=60)
    winner = await h.repo.claim_run(conversation_id, user_id, uuid.uuid4(), NOW, lease)
    assert winner is not None
    assert await h.repo.claim_run(conversation_id, user_id, uuid.uuid4(), NOW, lease) is None
    assert await h.repo.claim_run(conversation_id, uuid.uuid4(), uuid.uuid4(), NOW, lease) is None
    later = NOW + lease + timedelta(seconds=1)
    assert await h.repo.claim_run(conversation_id, user_id, uuid.uuid4(), later, lease)
