"""AGENT_MAX_TOOL_CALLS_PER_STEP through the whole app: a model answer asking for more calls
than the limit runs only the first ones; every other call gets a tool result saying it was not
run, so the stored history stays valid and the model answers."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from agent_api.infrastructure.db.schema import tool_executions
from tests.api.conftest import auth
from tests.conftest import make_settings, running_app
from tests.unit.agent_fakes import ScriptedChatModel, calls, text


async def test_calls_beyond_the_per_step_limit_are_answered_not_run(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, agent_max_tool_calls_per_step=2)
    asked = [(f"c{i}", "calculator", {"expression": f"{i} + 1"}) for i in range(5)]
    model = ScriptedChatModel(calls(*asked), text("two of five computed"))
    async with running_app(settings, chat_model=model) as client:
        headers = await auth(client)
        created = await client.post(
            "/v1/conversations", json={"message": "compute five things"}, headers=headers
        )
        assert created.status_code == 201, created.text
        turn = created.json()["data"]
    assert turn["status"] == "active"
    tool_messages = [m for m in turn["messages"] if m["role"] == "tool"]
    assert sorted(m["tool_call_id"] for m in tool_messages) == [f"c{i}" for i in range(5)]
    contents = {m["tool_call_id"]: json.loads(m["content"]) for m in tool_messages}
    assert contents["c0"]["result"] == 1
    assert contents["c1"]["result"] == 2
    for refused in ("c2", "c3", "c4"):
        assert "not run" in json.dumps(contents[refused])
        assert "AGENT_MAX_TOOL_CALLS_PER_STEP" in json.dumps(contents[refused])
    assert turn["messages"][-1]["content"].strip() == "two of five computed"
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            ran = (await conn.execute(select(func.count()).select_from(tool_executions))).scalar()
    finally:
        await engine.dispose()
    assert ran == 2
