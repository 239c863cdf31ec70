"""The `agent-api` command line as real subprocesses: migrate, create-user, serve, and
invalid configuration stopping startup with a message naming the variable."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agent_api.infrastructure.db.schema import metadata
from tests.conftest import TEST_JWT_SECRET, free_port, live_server

HEAD_REVISION_QUERY = "SELECT version_num FROM alembic_version"
PASSWORD = "correct horse battery"


def base_env(**variables: str) -> dict[str, str]:
    """A clean environment: nothing inherited but PATH and HOME."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LOG_LEVEL": "warning",
        **variables,
    }


def cli(
    *args: str, env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`python -m agent_api ARGS` in `cwd` (a directory without a .env file)."""
    return subprocess.run(
        [sys.executable, "-m", "agent_api", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def user_count(db_file: Path) -> int:
    """Users in a SQLite file; 0 when it was never migrated."""
    with sqlite3.connect(db_file) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'users'").fetchone():
            return 0
        count: int = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    return count


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from agent_api.infrastructure.db import migrations

    (head,) = ScriptDirectory.from_config(migrations.alembic_config()).get_heads()
    return head


# --- migrate -----------------------------------------------------------------------------------


def test_migrate_a_fresh_sqlite_file(tmp_path: Path) -> None:
    db_file = tmp_path / "fresh.db"

    result = cli("migrate", env=base_env(DATABASE_URL=sqlite_url(db_file)), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "database migrated to head" in result.stdout
    with sqlite3.connect(db_file) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        (version,) = conn.execute(HEAD_REVISION_QUERY).fetchone()
    assert set(metadata.tables) <= tables
    assert version == head_revision()
    # Running it again is harmless.
    again = cli("migrate", env=base_env(DATABASE_URL=sqlite_url(db_file)), cwd=tmp_path)
    assert again.returncode == 0, again.stderr


async def test_migrate_postgresql(tmp_path: Path, pg_url: str) -> None:
    env = base_env(DATABASE_URL=pg_url, JWT_SECRET=TEST_JWT_SECRET)

    result = cli("migrate", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "database migrated to head" in result.stdout
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text(HEAD_REVISION_QUERY))).scalar_one()
            tables = set(
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    assert version == head_revision()
    assert set(metadata.tables) <= tables


# --- create-user -------------------------------------------------------------------------------


def test_create_user_then_log_in_through_a_live_server(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "users.db")
    env = base_env(DATABASE_URL=url, JWT_SECRET=TEST_JWT_SECRET)

    admin = cli(
        *("create-user", "--email", " Root@Example.COM ", "--name", "Root", "--role", "admin"),
        env=env,
        cwd=tmp_path,
        stdin=PASSWORD + "\n",
    )
    # A password piped from a file written on Windows: the "\r" is not part of it.
    user = cli(
        *("create-user", "--email", "ada@example.com", "--name", "Ada"),
        env=env,
        cwd=tmp_path,
        stdin=PASSWORD + "\r\n",
    )

    assert admin.returncode == 0, admin.stderr
    assert "<root@example.com> role=admin" in admin.stdout
    assert user.returncode == 0, user.stderr
    assert "<ada@example.com> role=user" in user.stdout
    for result in (admin, user):
        assert PASSWORD not in result.stdout + result.stderr
    with live_server({"DATABASE_URL": url, "AGENT_API_CWD": str(tmp_path)}) as base_url:
        roles = {}
        for email in ("root@example.com", "ada@example.com"):
            login = httpx.post(
                f"{base_url}/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["data"]["access_token"]
            me = httpx.get(f"{base_url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
            roles[email] = me.json()["data"]["user"]["role"]
    assert roles == {"root@example.com": "admin", "ada@example.com": "user"}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--email", "ada@example.com", "--name", "Ada"], "short\n", "password"),
        (["--email", "ada@example.com", "--name", "Ada"], "", "password"),
        (["--email", "not-an-email", "--name", "Ada"], PASSWORD + "\n", "email"),
        (["--email", "ada@example.com", "--name", "  "], PASSWORD + "\n", "name"),
    ],
    ids=["short-password", "no-password", "invalid-email", "blank-name"],
)
def test_create_user_refuses_bad_input(
    tmp_path: Path, args: list[str], stdin: str, message: str
) -> None:
    url = sqlite_url(tmp_path / "users.db")
    result = cli("create-user", *args, env=base_env(DATABASE_URL=url), cwd=tmp_path, stdin=stdin)
    assert result.returncode != 0
    assert result.stderr.startswith("error:"), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert user_count(tmp_path / "users.db") == 0


def test_create_user_refuses_a_taken_email(tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=sqlite_url(tmp_path / "users.db"))
    first = cli(
        "create-user",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        env=env,
        cwd=tmp_path,
        stdin=PASSWORD,
    )
    assert first.returncode == 0, first.stderr
    second = cli(
        "create-user",
        "--email",
        "ADA@example.com",
        "--name",
        "Ada",
        env=env,
        cwd=tmp_path,
        stdin=PASSWORD,
    )
    assert second.returncode != 0
    assert "already exists" in second.stderr


# --- serve -------------------------------------------------------------------------------------


@contextmanager
def serving(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_api", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"server exited with {proc.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("server did not become healthy in time")


def test_serve_port_flag_overrides_server_port(tmp_path: Path) -> None:
    env_port, flag_port = free_port(), free_port()
    env = base_env(
        DATABASE_URL=sqlite_url(tmp_path / "serve.db"),
        JWT_SECRET=TEST_JWT_SECRET,
        SERVER_HOST="127.0.0.1",
        SERVER_PORT=str(env_port),
    )
    with serving(["serve", "--port", str(flag_port)], env, tmp_path) as proc:
        wait_healthy(f"http://127.0.0.1:{flag_port}", proc)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{env_port}/health", timeout=1)


# --- invalid configuration ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"JWT_ACCESS_TTL": "banana"}, "JWT_ACCESS_TTL"),
        ({"JWT_REFRESH_TTL": "99999999999999d"}, "JWT_REFRESH_TTL"),
        ({"SERVER_PORT": "eighty"}, "SERVER_PORT"),
        ({"DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:1/x"}, "JWT_SECRET"),
        (
            {
                "DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:1/x",
                "JWT_SECRET": "short-secret-value",
            },
            "JWT_SECRET",
        ),
    ],
    ids=["bad-duration", "huge-duration", "bad-port", "pg-without-secret", "pg-short-secret"],
)
def test_invalid_configuration_stops_startup(
    tmp_path: Path, command: str, variables: dict[str, str], named: str
) -> None:
    result = cli(command, env=base_env(**variables), cwd=tmp_path)

    assert result.returncode != 0
    assert result.stderr.startswith("invalid configuration:"), result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert "short-secret-value" not in result.stderr  # a secret is never echoed


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JWT_ACCESS_TTL=banana\n")
    result = cli("migrate", env=base_env(), cwd=tmp_path)
    assert result.returncode != 0
    assert "JWT_ACCESS_TTL" in result.stderr
