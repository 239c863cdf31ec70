"""Plugins through the whole app: the README's "Adding a custom tool" package, extracted from
the README itself and installed as a real distribution, is discovered at startup and runs
through `/v1/tools/execute` exactly as the README shows (so the example cannot rot)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, bearer, make_settings, register_and_login, running_app
from tests.integration.test_plugin_discovery import install_distribution
from tests.unit.fakes import FakeHasher

SECTION = "## Adding a custom tool"
FILE_BLOCK = re.compile(r"\*\*`(?P<path>[^`]+)`\*\*\s*\n+```[\w-]*\n(?P<code>.*?)\n```", re.DOTALL)
BASH_BLOCK = re.compile(r"```bash\n(?P<code>.*?)\n```", re.DOTALL)


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else None]


def readme_files() -> dict[str, str]:
    return {Path(m["path"]).name: m["code"] + "\n" for m in FILE_BLOCK.finditer(readme_section())}


@pytest.fixture
def readme_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Installs the README's package as a distribution; yields its tool name."""
    files = readme_files()
    project = tomllib.loads(files.pop("pyproject.toml"))["project"]
    entry_points: dict[str, str] = project["entry-points"]["agent_api.tools"]
    modules = {Path(name).stem: source for name, source in files.items()}
    site = tmp_path / "site-packages"
    site.mkdir()
    install_distribution(site, project["name"], modules, entry_points)
    monkeypatch.syspath_prepend(str(site))
    [tool_name] = entry_points
    yield tool_name
    for module in modules:
        sys.modules.pop(module, None)


def test_the_readme_shows_a_complete_package() -> None:
    files = readme_files()
    assert set(files) == {"agent_word_count.py", "pyproject.toml"}
    project = tomllib.loads(files["pyproject.toml"])["project"]
    assert project["entry-points"]["agent_api.tools"] == {
        "word_count": "agent_word_count:WordCount"
    }


def _readme_curl() -> tuple[dict[str, Any], dict[str, Any]]:
    """The README's curl request body and the answer it says comes back."""
    [bash] = [m["code"] for m in BASH_BLOCK.finditer(readme_section())]
    request = re.search(r"-d '(?P<body>\{.*\})'", bash)
    answer = re.search(r"^# (?P<answer>\{.*\})$", bash, re.MULTILINE)
    assert request
    assert answer
    return json.loads(request["body"]), json.loads(answer["answer"])


async def test_the_readme_plugin_is_discovered_and_runs(readme_plugin: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_enabled=False)
    async with running_app(settings, hasher=FakeHasher()) as client:
        client.headers.update(bearer((await register_and_login(client))["access_token"]))

        tools = (await client.get("/v1/tools")).json()["data"]["tools"]
        assert [t["function"]["name"] for t in tools] == ["calculator", readme_plugin]

        request, documented = _readme_curl()
        response = await client.post("/v1/tools/execute", json=request)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert {**answer, "data": {**answer["data"], "duration_ms": 0}} == documented

        empty = {**request, "function": {"name": readme_plugin, "arguments": '{"text": "  "}'}}
        failed = await client.post("/v1/tools/execute", json=empty)
        assert failed.status_code == 422
        assert failed.json()["error"] == {
            "code": "TOOL_FAILED",
            "message": "the text has no words to count",
        }

        missing = {**request, "function": {"name": readme_plugin, "arguments": "{}"}}
        invalid = await client.post("/v1/tools/execute", json=missing)
        assert invalid.status_code == 400
        assert invalid.json()["error"]["details"] == [{"field": "text", "message": "is required"}]
