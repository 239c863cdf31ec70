"""The composition root picks the chat model from the settings, and tests can swap it (or any
other adapter: what is passed in stays open)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_api.bootstrap import build
from agent_api.domain.chat import ChatMessage, ChatRequest
from agent_api.infrastructure.db.database import create_engine
from agent_api.infrastructure.llm import DemoChatModel, OpenAICompatibleChatModel
from tests.conftest import make_settings
from tests.stub_llm import StubLLM


async def test_without_an_llm_url_the_demo_model_answers(tmp_path: Path) -> None:
    async with build(make_settings(tmp_path)) as container:
        assert isinstance(container.chat_model, DemoChatModel)


async def test_with_an_llm_url_the_openai_compatible_model_answers(tmp_path: Path) -> None:
    with StubLLM() as stub:
        settings = make_settings(tmp_path, llm_base_url=stub.url, llm_api_key="sk-from-settings")
        async with build(settings) as container:
            assert isinstance(container.chat_model, OpenAICompatibleChatModel)
            result = await container.chat_model.complete(
                ChatRequest("gpt-4o-mini", (ChatMessage.user("hi"),))
            )

    assert result.message.content == "Echo: hi"
    assert stub.requests[0].headers["authorization"] == "Bearer sk-from-settings"


async def test_llm_provider_demo_wins_over_a_configured_url(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, llm_provider="demo", llm_base_url="http://127.0.0.1:1")
    async with build(settings) as container:
        assert isinstance(container.chat_model, DemoChatModel)


async def test_a_chat_model_can_be_passed_in_and_is_left_open(tmp_path: Path) -> None:
    with StubLLM() as stub:
        mine = OpenAICompatibleChatModel(stub.url)
        async with build(make_settings(tmp_path), chat_model=mine) as container:
            assert container.chat_model is mine
        # Still usable: the container closes only what it built.
        result = await mine.complete(ChatRequest("m", (ChatMessage.user("hi"),)))
        await mine.aclose()

    assert result.message.content == "Echo: hi"


async def test_an_engine_passed_in_is_left_open(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}")
    try:
        async with build(make_settings(tmp_path), engine=engine) as container:
            assert container.db.engine is engine
            pool = engine.pool
        # Disposing an engine replaces its pool.
        assert engine.pool is pool
    finally:
        await engine.dispose()


async def test_an_unknown_adapter_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        async with build(make_settings(tmp_path), hasherr=None):  # type: ignore[call-arg]
            pass
