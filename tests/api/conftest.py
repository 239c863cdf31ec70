"""Fixtures for whole-app tests of the agent surfaces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import bearer, make_settings, register_and_login, running_app


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(tmp_path)) as c:
        yield c


@pytest.fixture
async def approval_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The calculator needs approval here."""
    async with running_app(make_settings(tmp_path, tools_requiring_approval="calculator")) as c:
        yield c


async def auth(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, str]:
    return bearer((await register_and_login(client, email))["access_token"])


def sse_events(body: str) -> list[Any]:
    """The data payloads of an SSE body, in order (`[DONE]` as the string)."""
    events = []
    for block in body.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


@pytest.fixture
async def app_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A second connection to the database of `app_client` / `approval_client`."""
    engine = create_async_engine(make_settings(tmp_path).database_url)
    yield engine
    await engine.dispose()
