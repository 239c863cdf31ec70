"""The composition root picks the chat model from the settings, and tests can swap it."""

from __future__ import annotations

from pathlib import Path

from agent_api.bootstrap import build
from agent_api.domain.chat import ChatMessage, ChatRequest
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
