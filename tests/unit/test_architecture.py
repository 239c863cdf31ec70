"""Dependencies point inward: each layer imports only the layers it may know.

Read from the source with `ast` (imports inside functions count too), so a violation fails
here before it shapes the code around it. See CONTRIBUTING.md for the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "agent_api"

# layer -> the agent_api packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "domain": ("application", "infrastructure", "api", "tools", "bootstrap", "config"),
    "application": ("infrastructure", "api", "bootstrap"),
    "infrastructure": ("api", "bootstrap"),
    "tools": ("application", "infrastructure", "api", "bootstrap", "config"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "agent_api" or name.startswith("agent_api.")}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_outside_what_it_may_know(layer: str) -> None:
    violations = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                violations.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not violations, "\n".join(violations)


def test_the_ports_import_only_the_domain() -> None:
    """A port speaks in domain objects: a ports module that imported a service or another
    module of the application would tie the adapters implementing it to that code."""
    modules = sorted((PACKAGE / "application").glob("ports*.py"))
    assert {path.stem for path in modules} >= {"ports", "ports_auth", "ports_limits", "ports_usage"}
    violations = [
        f"{path.name} imports {name}"
        for path in modules
        for name in _imports(path)
        if not name.startswith("agent_api.domain")
    ]
    assert not violations, "\n".join(violations)


def test_the_rules_see_imports() -> None:
    """The checker itself: it finds `from agent_api.x import y` and `import agent_api.x`."""
    sample = PACKAGE / "api" / "deps.py"
    assert any(name.startswith("agent_api.domain") for name in _imports(sample))
