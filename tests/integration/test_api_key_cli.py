"""`agent-api create-api-key`: prints the new key once; stores only its hash; refuses bad
input with a message and a non-zero exit."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_api.domain.api_keys import hash_key
from agent_api.domain.users import Role, User
from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.database import Database, create_engine
from agent_api.infrastructure.db.users import SqlUserRepository
from tests.conftest import TEST_JWT_SECRET


def run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'cli.db'}",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "warning",
    }
    return subprocess.run(
        [sys.executable, "-m", "agent_api", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
async def with_user(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database (shared by this module's tests) holding ada@example.com."""
    directory = tmp_path_factory.mktemp("cli")
    engine = create_engine(f"sqlite+aiosqlite:///{directory / 'cli.db'}")
    try:
        await migrations.upgrade(engine)
        now = datetime.now(UTC)
        user = User(uuid.uuid4(), "ada@example.com", "Ada", Role.USER, True, "x", now, now)
        await SqlUserRepository(Database(engine)).add(user)
    finally:
        await engine.dispose()
    return directory


def key_count(directory: Path) -> int:
    with sqlite3.connect(directory / "cli.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM api_keys").fetchone()
    return int(count)


def test_create_api_key_prints_the_key_once(with_user: Path) -> None:
    result = run(
        with_user,
        "create-api-key",
        "--email",
        "Ada@Example.com",
        "--name",
        "ci",
        "--allowed-tools",
        "calculator, web_search",
        "--allowed-models",
        "",
        "--expires-in",
        "30d",
        "--rate-limit-per-minute",
        "5",
    )
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-")
    assert (result.stdout + result.stderr).count(secret) == 1
    assert "cannot be shown again" in result.stderr

    with sqlite3.connect(with_user / "cli.db") as conn:
        row = conn.execute(
            "SELECT key_hash, allowed_tools, allowed_models, rate_limit_per_minute, expires_at "
            "FROM api_keys WHERE name = 'ci'"
        ).fetchone()
    assert row[0] == hash_key(secret)
    assert row[1:4] == ('["calculator", "web_search"]', "[]", 5)
    assert row[4] is not None


def test_create_api_key_refuses_bad_input(with_user: Path) -> None:
    cases = [
        (["--email", "nobody@example.com", "--name", "x"], "no user with email"),
        (["--email", "ada@example.com", "--name", "x", "--expires-in", "soon"], "--expires-in"),
        (
            ["--email", "ada@example.com", "--name", "x", "--rate-limit-per-minute", "0"],
            "rate_limit_per_minute",
        ),
        # Above the server's maximum (RATE_LIMIT_MAX_PER_MINUTE, here the default 60).
        (
            ["--email", "ada@example.com", "--name", "x", "--rate-limit-per-minute", "61"],
            "rate_limit_per_minute",
        ),
    ]
    before = key_count(with_user)
    for args, message in cases:
        result = run(with_user, "create-api-key", *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "sk-" not in result.stdout
    assert key_count(with_user) == before
