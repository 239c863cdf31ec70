"""Alembic migrations on a fresh PostgreSQL database and on SQLite: every revision goes up,
down and up again, and the migrated schema is exactly `schema.metadata`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent_api.infrastructure.db import migrations
from agent_api.infrastructure.db.database import create_engine
from agent_api.infrastructure.db.schema import metadata
from tests.conftest import TEST_DATABASE_URL, require_service


@pytest.fixture
async def fresh_pg_engine() -> AsyncIterator[AsyncEngine]:
    """An engine on a brand-new PostgreSQL database of its own (dropped afterwards); the
    session's shared database is left alone, since this test tears schemas down."""
    admin = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    name = f"agent_api_migrations_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        await admin.dispose()
        require_service("postgresql", f"{type(exc).__name__}: {exc}"[:200])
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    name = "fresh_pg_engine" if request.param == "postgresql" else "sqlite_engine"
    result: AsyncEngine = request.getfixturevalue(name)
    return result


def revisions_oldest_first() -> list[str]:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def schema_differences(engine: AsyncEngine) -> list[Any]:
    def compare(conn: Connection) -> list[Any]:
        # Server defaults are compared on PostgreSQL only: SQLite reflects them as raw SQL
        # text (`''` vs ''), which alembic reports as false differences.
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": conn.dialect.name != "sqlite"},
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


def test_the_history_is_linear_with_one_head() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


async def test_up_down_up_leaves_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    head = revisions_oldest_first()[-1]

    await migrations.upgrade(engine)
    assert await tables(engine) == set(metadata.tables)
    assert await current_revision(engine) == head

    await migrations.downgrade(engine, "base")
    assert await tables(engine) == set()
    assert await current_revision(engine) is None

    await migrations.upgrade(engine)
    assert await current_revision(engine) == head
    assert await schema_differences(engine) == []


async def test_every_revision_has_a_working_downgrade(engine: AsyncEngine) -> None:
    # Step by step, so a revision added later is held to the same rule: from the state before
    # it, up then down returns to that state, and up again works.
    previous_tables: set[str] = set()
    for revision in revisions_oldest_first():
        await migrations.upgrade(engine, revision)
        after_up = await tables(engine)
        await migrations.downgrade(engine, "-1")
        assert await tables(engine) == previous_tables, f"downgrade of {revision}"
        await migrations.upgrade(engine, revision)
        assert await tables(engine) == after_up, f"re-upgrade of {revision}"
        assert await current_revision(engine) == revision
        previous_tables = after_up


async def test_upgrading_an_up_to_date_database_changes_nothing(engine: AsyncEngine) -> None:
    await migrations.upgrade(engine)
    await migrations.upgrade(engine)
    assert await schema_differences(engine) == []


async def test_naming_convention_names_every_constraint(engine: AsyncEngine) -> None:
    await migrations.upgrade(engine)

    def constraint_names(conn: Connection) -> dict[str, list[str | None]]:
        inspector = inspect(conn)
        names: dict[str, list[str | None]] = {}
        for table in metadata.tables:
            found = [inspector.get_pk_constraint(table).get("name")]
            found += [fk.get("name") for fk in inspector.get_foreign_keys(table)]
            found += [uq.get("name") for uq in inspector.get_unique_constraints(table)]
            found += [ix.get("name") for ix in inspector.get_indexes(table)]
            names[table] = found
        return names

    async with engine.connect() as conn:
        names = await conn.run_sync(constraint_names)
    assert names["users"][0] == "pk_users"
    assert "uq_users_email" in names["users"]
    assert "fk_sessions_user_id_users" in names["sessions"]
    assert "ix_sessions_user_id" in names["sessions"]
    for table, table_names in names.items():
        unnamed = [n for n in table_names if not (n and n.startswith(("pk_", "fk_", "uq_", "ix_")))]
        assert unnamed == [], table
