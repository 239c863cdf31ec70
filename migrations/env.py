"""Alembic environment.

Two ways in: `agent-api migrate` / the app's auto-migrate hand over an open connection in
`config.attributes["connection"]`; the `alembic` command line builds an engine from
DATABASE_URL. `render_as_batch` keeps ALTERs portable to SQLite.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from agent_api.config import Settings
from agent_api.infrastructure.db.database import create_engine
from agent_api.infrastructure.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.attributes.get("url") or Settings().database_url
    asyncio.run(_run_from_url(url))
