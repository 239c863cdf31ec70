"""Run Alembic migrations programmatically (CLI `migrate`, auto-migrate at startup, tests).

On PostgreSQL every run holds an advisory lock for its whole duration, so replicas that start
together on one database migrate it one after the other: the first applies the revisions, the
others then find the schema at head and have nothing to do. SQLite is a file of one process
(its own locking is enough).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# Source checkouts keep migrations/ at the project root; the wheel and the Docker image ship
# them next to alembic.ini in the working directory.
_ROOT_CANDIDATES = (Path(__file__).resolve().parents[4], Path.cwd())

# The advisory-lock key of migrations: any constant bigint, the same in every replica and
# version ("agent-api migrations" as a number, so it is recognisable in pg_locks).
MIGRATION_LOCK_KEY = 0x61676E7461706900


def alembic_config() -> Config:
    """The project's Alembic config. Raises FileNotFoundError when alembic.ini cannot be found."""
    for root in _ROOT_CANDIDATES:
        ini = root / "alembic.ini"
        if ini.is_file():
            config = Config(str(ini))
            config.set_main_option("script_location", str(root / "migrations"))
            return config
    raise FileNotFoundError("alembic.ini not found next to the project or in the working directory")


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on `engine`'s database."""
    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Revert migrations down to `revision` (`base` drops everything)."""
    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def _run(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    config = alembic_config()

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        action(config)

    if engine.dialect.name != "postgresql":
        async with engine.begin() as conn:
            await conn.run_sync(run)
        return
    # A session-level lock on a connection of its own: it is held across whatever
    # transactions the migration uses, and PostgreSQL releases it if this process dies.
    async with engine.connect() as lock_conn:
        await lock_conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await lock_conn.commit()
        try:
            async with engine.begin() as conn:
                await conn.run_sync(run)
        finally:
            await lock_conn.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await lock_conn.commit()
