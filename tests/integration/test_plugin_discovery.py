"""Plugin discovery from real installed distributions (a `*.dist-info` with METADATA and
entry_points.txt plus a module, on sys.path): the three entry-point forms, and the startup
errors for plugins that cannot be offered."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from agent_api.tools.base import ToolRegistrationError
from agent_api.tools.plugins import ENTRY_POINT_GROUP, discover_plugins
from agent_api.tools.registry import build_registry
from tests.conftest import make_settings

Installer = Callable[[str, dict[str, str]], str]


def install_distribution(
    site: Path, dist_name: str, modules: dict[str, str], entry_points: dict[str, str]
) -> None:
    """Writes an installed distribution into `site`: each module file, and a dist-info
    declaring `entry_points` (name -> "module:attr") in the tool group."""
    for module, source in modules.items():
        (site / f"{module}.py").write_text(dedent(source))
    dist_info = site / f"{dist_name.replace('-', '_')}-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1.0\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    """Installs `source` as a fresh module (unique name) of a distribution on sys.path and
    returns the module name; entry point targets use `{module}` for it. Removed afterwards."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    installed: list[str] = []

    def installer(source: str, entry_points: dict[str, str]) -> str:
        module = f"plugin_{uuid.uuid4().hex[:12]}"
        targets = {name: target.format(module=module) for name, target in entry_points.items()}
        install_distribution(site, module.replace("_", "-"), {module: source}, targets)
        installed.append(module)
        return module

    yield installer
    for module in installed:
        sys.modules.pop(module, None)


TOOLS_SOURCE = """
from typing import Any

from agent_api.tools import ToolContext


class Shout:
    name = "shout"
    description = "Upper-cases a text."
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}}
    requires_approval = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        return args.get("text", "").upper()


class Named(Shout):
    def __init__(self, name: str) -> None:
        self.name = name


INSTANCE = Named("instance_tool")


def factory(settings):
    # Factories get the server's Settings.
    return [Named(f"made_{int(settings.tool_timeout.total_seconds())}"), Named("made_too")]


NOT_A_TOOL = 42
BAD_NAME = Named("has spaces")
SHADOW = Named("calculator")
"""


def test_instance_class_and_factory_entry_points(install: Installer, tmp_path: Path) -> None:
    install(
        TOOLS_SOURCE,
        {"a": "{module}:Shout", "b": "{module}:INSTANCE", "c": "{module}:factory"},
    )
    found = discover_plugins(make_settings(tmp_path, tool_timeout="7s"))
    names = sorted(tool.name for tool, _ in found)
    assert names == ["instance_tool", "made_7", "made_too", "shout"]
    origins = {tool.name: origin for tool, origin in found}
    assert origins["shout"].startswith("plugin 'a' (")
    registry = build_registry(plugin_settings=make_settings(tmp_path))
    assert {"calculator", "shout", "made_too"} <= set(registry.names)


async def test_a_discovered_tool_runs(install: Installer, tmp_path: Path) -> None:
    install(TOOLS_SOURCE, {"a": "{module}:Shout"})
    [(tool, _)] = discover_plugins(make_settings(tmp_path))
    assert await tool.run({"text": "hi"}, None) == "HI"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("{module}_missing:Shout", "could not be loaded: ModuleNotFoundError"),
        ("{module}:Missing", "could not be loaded: AttributeError"),
        ("{module}:NOT_A_TOOL", "could not be loaded: TypeError"),
        ("{module}:BAD_NAME", "must match"),
        ("{module}:SHADOW", "two tools are named 'calculator': built-in and plugin 'broken'"),
    ],
)
def test_a_broken_plugin_stops_startup_naming_it(
    install: Installer, tmp_path: Path, target: str, problem: str
) -> None:
    install(TOOLS_SOURCE, {"broken": target})
    with pytest.raises(ToolRegistrationError, match=problem) as caught:
        build_registry(plugin_settings=make_settings(tmp_path))
    assert "plugin 'broken'" in str(caught.value)
