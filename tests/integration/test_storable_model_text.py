"""What the language model writes is stored whatever it contains: NUL characters and lone
surrogates become U+FFFD, ids and names longer than their column are shortened consistently
(a call and its result stay paired, and a paused call can still be approved). On PostgreSQL,
whose text and JSONB refuse NUL, and on SQLite alike."""

from __future__ import annotations

import uuid
from pathlib import Path

from agent_api.domain.chat import ChatMessage, ChatResult, ToolCall, Usage
from agent_api.domain.conversations import ConversationStatus, NewMessage
from agent_api.infrastructure.db.conversations import SqlConversationRepository
from agent_api.infrastructure.db.database import Database
from tests.conftest import bearer, make_settings, register_and_login, running_app
from tests.integration.databases import backend_db, sqlite_db
from tests.integration.test_conversation_repository import NOW, conversation, make_user
from tests.unit.agent_fakes import ScriptedChatModel, text

__all__ = ["backend_db", "sqlite_db"]

LONG_ID = "call_" + "i" * 150
OTHER_LONG_ID = "call_" + "i" * 149 + "j"  # the same first 100 characters as LONG_ID
LONG_NAME = "tool_" + "n" * 150


async def test_model_text_with_nul_and_long_ids_is_stored(backend_db: Database) -> None:
    db = backend_db
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    conv = conversation(user)
    await repo.create(conv)
    calls = (
        # Arguments are the model's text as is: a raw NUL in it, not a JSON escape.
        ToolCall(LONG_ID, LONG_NAME, '{"x": "a\x00b", "y": "\\u0000"}'),
        ToolCall(OTHER_LONG_ID, "calc\x00ulator", "{}"),
    )
    await repo.append(
        NewMessage(
            conv.id,
            "assistant",
            NOW,
            content="an answer with a NUL \x00 and a lone surrogate \ud800",
            tool_calls=calls,
            model="m" * 150,
            usage=Usage(1, 1),
        )
    )
    for call in calls:
        await repo.append(
            NewMessage(
                conv.id, "tool", NOW, content="result\x00", tool_call_id=call.id, name=call.name
            )
        )

    assistant, first, second = await repo.messages(conv.id)
    assert assistant.content == "an answer with a NUL \ufffd and a lone surrogate \ufffd"
    assert assistant.model is not None
    assert len(assistant.model) <= 100
    stored_ids = [c.id for c in assistant.tool_calls]
    assert all(len(i) <= 100 for i in stored_ids)
    assert len(set(stored_ids)) == 2, "shortened ids stay distinct"
    assert [first.tool_call_id, second.tool_call_id] == stored_ids, "calls and results pair"
    assert assistant.tool_calls[0].arguments == '{"x": "a\ufffdb", "y": "\\u0000"}'
    assert assistant.tool_calls[1].name == "calc\ufffdulator"
    assert first.name is not None
    assert len(first.name) <= 100
    assert first.content == "result\ufffd"
    # The history the model reads next is well formed: every call has its result.
    history = [m.to_chat() for m in await repo.messages(conv.id)]
    assert [m.tool_call_id for m in history[1:]] == [c.id for c in history[0].tool_calls]


async def test_paused_calls_with_model_text_are_stored_as_shown(backend_db: Database) -> None:
    db = backend_db
    repo = SqlConversationRepository(db)
    user = await make_user(db)
    conv = conversation(user, ConversationStatus.RUNNING)
    await repo.create(conv)
    call = ToolCall(LONG_ID, "calculator", "{}")
    pending = await repo.add_pending_approvals(
        conv.id, user.id, None, None, [(call, {"expression\x00": "1\x00"}, "why\x00")], NOW
    )
    stored = await repo.pending_approvals(conv.id)
    assert [(p.tool_call_id, p.arguments, p.reason) for p in stored] == [
        (pending[0].tool_call_id, {"expression\ufffd": "1\ufffd"}, "why\ufffd")
    ]
    assert len(pending[0].tool_call_id) <= 100


async def test_an_answer_with_nul_and_a_long_call_id_runs_to_the_end_on_postgresql(
    tmp_path: Path, migrated_pg_url: str
) -> None:
    """The whole app on PostgreSQL: the model answers with a NUL and calls a tool (which needs
    approval) under an id longer than its column; the turn is stored, the call can be
    approved by the id the client is shown, and the run completes."""
    call_answer = ChatResult(
        message=ChatMessage(
            role="assistant",
            content="let me compute \x00",
            tool_calls=(ToolCall(LONG_ID, "calculator", '{"expression": "2 + 2"}'),),
        ),
        finish_reason="tool_calls",
        usage=Usage(10, 3),
        model="fake",
    )
    model = ScriptedChatModel(call_answer, text("four \x00 done"))
    settings = make_settings(
        tmp_path, database_url=migrated_pg_url, tools_requiring_approval="calculator"
    )
    async with running_app(settings, chat_model=model) as client:
        email = f"nul-{uuid.uuid4().hex[:12]}@example.com"
        headers = bearer((await register_and_login(client, email))["access_token"])
        created = await client.post(
            "/v1/conversations", json={"message": "What is 2 + 2?"}, headers=headers
        )
        assert created.status_code == 201, created.text
        turn = created.json()["data"]
        assert turn["status"] == "pending_approval"
        assert turn["messages"][-1]["content"] == "let me compute \ufffd"
        (shown,) = turn["pending_approval"]["tool_calls"]
        assert len(shown["id"]) <= 100

        conversation_id = turn["conversation"]["id"]
        approved = await client.post(
            f"/v1/conversations/{conversation_id}/approve",
            json={"approved": True, "tool_call_ids": [shown["id"]]},
            headers=headers,
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["data"]["status"] == "active"

        detail = await client.get(f"/v1/conversations/{conversation_id}", headers=headers)
        messages = detail.json()["data"]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
        assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == shown["id"]
        assert "4" in messages[2]["content"]
        assert messages[3]["content"] == "four \ufffd done"
