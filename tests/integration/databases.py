"""A `backend_db` fixture for repository tests that must hold on both engines: PostgreSQL
(the rolled-back `db` fixture) and SQLite (a freshly migrated private file).

Import it into a test module: `from tests.integration.databases import backend_db, sqlite_db`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.database import Database, create_engine


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty SQLite Database in a private file."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'repo.db'}")
    await migrations.upgrade(engine)
    try:
        yield Database(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def backend_db(request: pytest.FixtureRequest) -> Database:
    """A migrated, empty Database on each engine in turn (`db` is PostgreSQL, rolled back)."""
    db: Database = request.getfixturevalue("db" if request.param == "postgresql" else "sqlite_db")
    return db
