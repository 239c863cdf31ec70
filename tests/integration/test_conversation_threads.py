"""The repository's stateless-threading methods on PostgreSQL and SQLite: batch appends keep
sequence numbers and counters right, fingerprints ride on the claim and the end of a run,
and the thread lookup is scoped to the owner and prefers the longest match."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from agent_api.domain.chat import ToolCall, Usage
from agent_api.domain.conversations import ConversationStatus, NewMessage
from agent_api.infrastructure.db.conversations import SqlConversationRepository
from agent_api.infrastructure.db.database import Database
from tests.integration.databases import backend_db, sqlite_db
from tests.integration.test_conversation_repository import LEASE, NOW, conversation, make_user

__all__ = ["backend_db", "sqlite_db"]

A, B, C = "a" * 64, "b" * 64, "c" * 64


async def test_append_many_numbers_in_order_and_counts_everything(backend_db: Database) -> None:
    repo = SqlConversationRepository(backend_db)
    user = await make_user(backend_db)
    conv = conversation(user)
    await repo.create(conv)
    await repo.append(NewMessage(conv.id, "user", NOW, content="first"))
    call = ToolCall("c1", "calculator", '{"expression": "1+1"}')
    new = [
        NewMessage(conv.id, "assistant", NOW, tool_calls=(call,), usage=Usage(7, 3)),
        NewMessage(conv.id, "tool", NOW, content="2", tool_call_id="c1", name="calculator"),
        *(NewMessage(conv.id, "user", NOW, content=f"m{i}\x00") for i in range(50)),
    ]
    stored = await repo.append_many(conv.id, new)
    assert [m.seq for m in stored] == list(range(2, 54))
    assert [m.content for m in stored[2:4]] == ["m0\ufffd", "m1\ufffd"]  # made storable
    assert stored[0].tool_calls == (call,)
    assert [m.seq for m in await repo.messages(conv.id)] == list(range(1, 54))
    counted = await repo.get(conv.id, user.id)
    assert counted is not None
    assert (counted.message_count, counted.tool_call_count) == (53, 1)
    assert (counted.prompt_tokens, counted.completion_tokens, counted.total_tokens) == (7, 3, 10)
    assert await repo.append_many(conv.id, []) == []


async def test_the_fingerprint_is_written_by_create_claim_and_finish(backend_db: Database) -> None:
    repo = SqlConversationRepository(backend_db)
    user = await make_user(backend_db)
    conv = replace(conversation(user), fingerprint=A)
    await repo.create(conv)
    assert (await repo.find_thread(user.id, [A])) == await repo.get(conv.id, user.id)
    run = uuid.uuid4()
    claimed = await repo.claim_run(conv.id, user.id, run, NOW, LEASE, fingerprint=B)
    assert claimed is not None
    assert claimed.fingerprint == B
    finished = await repo.finish_run(conv.id, run, ConversationStatus.ACTIVE, NOW, fingerprint=C)
    assert finished is not None
    assert finished.fingerprint == C
    run = uuid.uuid4()
    kept = await repo.claim_run(conv.id, user.id, run, NOW, LEASE)  # a native claim
    assert kept is not None
    assert kept.fingerprint == C
    cleared = await repo.finish_run(conv.id, run, ConversationStatus.ACTIVE, NOW)
    assert cleared is not None
    assert cleared.fingerprint is None


async def test_find_thread_prefers_the_longest_then_the_latest(backend_db: Database) -> None:
    repo = SqlConversationRepository(backend_db)
    user = await make_user(backend_db)
    old_long = replace(conversation(user), fingerprint=A)
    new_short = replace(conversation(user), fingerprint=B, updated_at=NOW + timedelta(hours=1))
    newer_long = replace(conversation(user), fingerprint=A, updated_at=NOW + timedelta(hours=2))
    for conv in (old_long, new_short):
        await repo.create(conv)
    found = await repo.find_thread(user.id, [C, A, B])
    assert found is not None
    assert found.id == old_long.id
    await repo.create(newer_long)
    found = await repo.find_thread(user.id, [C, A, B])
    assert found is not None
    assert found.id == newer_long.id
    assert await repo.find_thread(user.id, [C]) is None
    assert await repo.find_thread(user.id, []) is None


async def test_find_thread_is_the_owners_and_skips_deleted(backend_db: Database) -> None:
    repo = SqlConversationRepository(backend_db)
    alice, bob = await make_user(backend_db), await make_user(backend_db)
    conv = replace(conversation(alice), fingerprint=A)
    await repo.create(conv)
    assert await repo.find_thread(bob.id, [A]) is None
    await repo.delete(conv.id, alice.id, NOW)
    assert await repo.find_thread(alice.id, [A]) is None


@pytest.mark.parametrize("count", [600])
async def test_find_thread_takes_hundreds_of_heads(backend_db: Database, count: int) -> None:
    repo = SqlConversationRepository(backend_db)
    user = await make_user(backend_db)
    heads = [f"{i:064x}" for i in range(count)]
    conv = replace(conversation(user), fingerprint=heads[-1])
    await repo.create(conv)
    found = await repo.find_thread(user.id, heads)
    assert found is not None
    assert found.id == conv.id


async def test_chat_history_is_the_stored_messages_as_the_model_reads_them(
    backend_db: Database,
) -> None:
    repo = SqlConversationRepository(backend_db)
    user = await make_user(backend_db)
    conv = conversation(user)
    await repo.create(conv)
    call = ToolCall("c1", "calculator", '{"expression": "1+1"}')
    await repo.append_many(
        conv.id,
        [
            NewMessage(conv.id, "system", NOW, content="be brief"),
            NewMessage(conv.id, "user", NOW, content="1+1?"),
            NewMessage(conv.id, "assistant", NOW, tool_calls=(call,)),
            NewMessage(conv.id, "tool", NOW, content="2", tool_call_id="c1", name="calculator"),
        ],
    )
    history = await repo.chat_history(conv.id)
    assert history == [m.to_chat() for m in await repo.messages(conv.id)]
    assert [m.role for m in history] == ["system", "user", "assistant", "tool"]
    assert history[2].tool_calls == (call,)
