"""The README's examples, run as written against a live server.

Every fenced block preceded by `<!-- tested: GROUP [VAR=value ...] -->` is run: the bash blocks
of a group as one script (so later blocks see earlier variables), then its python blocks with
the variables the script exported. Each group gets a fresh server on embedded defaults with
the group's variables; `http://127.0.0.1:8080` is replaced by that server's address.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT, live_server

README = (ROOT / "README.md").read_text()
MARKED = re.compile(r"<!-- tested: (\S+)((?: \w+=\S+)*) -->\n```(bash|python)\n(.*?)```", re.S)
DEFAULT_BASE = "http://127.0.0.1:8080"


def groups() -> dict[str, tuple[dict[str, str], list[tuple[str, str]]]]:
    found: dict[str, tuple[dict[str, str], list[tuple[str, str]]]] = defaultdict(lambda: ({}, []))
    for name, env, language, code in MARKED.findall(README):
        variables, blocks = found[name]
        variables.update(pair.split("=", 1) for pair in env.split())
        blocks.append((language, code))
    return dict(found)


def run_group(name: str, tmp_path: Path) -> tuple[str, str]:
    variables, blocks = groups()[name]
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'readme.db'}", **variables}
    with live_server(env) as base:
        script = "set -euo pipefail\n" + "\n".join(
            code.replace(DEFAULT_BASE, base) for language, code in blocks if language == "bash"
        )
        script += '\necho "__AGENT_API_KEY=${AGENT_API_KEY:-}"\n'
        shell = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
        assert shell.returncode == 0, shell.stdout + shell.stderr
        exported = re.search(r"__AGENT_API_KEY=(\S*)", shell.stdout)
        python_out = ""
        for language, code in blocks:
            if language != "python":
                continue
            result = subprocess.run(
                [sys.executable, "-c", code.replace(DEFAULT_BASE, base)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                env={"AGENT_API_KEY": exported.group(1) if exported else "", "PATH": "/usr/bin"},
            )
            assert result.returncode == 0, result.stdout + result.stderr
            python_out += result.stdout
    return shell.stdout, python_out


def test_every_marked_block_belongs_to_a_known_group() -> None:
    assert set(groups()) == {"tour", "approvals"}
    assert sum(len(blocks) for _, blocks in groups().values()) == len(MARKED.findall(README))


@pytest.mark.parametrize("name", ["tour"])
def test_the_tour_runs_as_written(name: str, tmp_path: Path) -> None:
    shell, python = run_group(name, tmp_path)
    assert '{"success":true,"data":{"status":"ok"}}' in shell
    assert '"name":"calculator","result":{"expression":"1337 * 42","result":56154}' in shell
    assert '"object":"chat.completion"' in shell
    assert "56154" in shell.split('"object":"chat.completion"', 1)[1]
    assert "data: [DONE]" in shell
    assert re.search(r"__AGENT_API_KEY=sk-\S{40,}", shell)
    lines = python.splitlines()
    assert lines[0] == "1337 * 42 = 56154."
    assert "4" in lines[1]


def test_the_approval_walkthrough_runs_as_written(tmp_path: Path) -> None:
    shell, _ = run_group("approvals", tmp_path)
    assert '"status":"pending_approval"' in shell
    approved = shell.rsplit('{"success":true', 1)[1]
    assert '"status":"active"' in approved
    assert '\\"result\\": 6' in approved
