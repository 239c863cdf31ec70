"""Replicas starting together on an empty PostgreSQL database all migrate it: the upgrades are
serialised by an advisory lock, so none fails on a table or version row another one created."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.script import ScriptDirectory
from sqlalchemy import text

from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.database import create_engine
from tests.conftest import ROOT, TEST_JWT_SECRET, fresh_database

# Several at once make the race all but certain without the lock.
REPLICAS = 6


async def test_concurrent_migrate_processes_on_an_empty_database_all_succeed() -> None:
    async with fresh_database("migrate_race") as url:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "LOG_LEVEL": "warning",
        }
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "agent_api", "migrate"],
                env=env,
                cwd=str(ROOT),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(REPLICAS)
        ]
        outputs = [(p.wait(120), p.stdout.read().decode() if p.stdout else "") for p in processes]
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                versions = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).all()
        finally:
            await engine.dispose()
    failures = [output for code, output in outputs if code != 0]
    assert failures == [], failures[0][-2000:]
    head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
    assert [row[0] for row in versions] == [head]
