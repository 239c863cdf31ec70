"""Run Alembic migrations programmatically (CLI `migrate`, auto-migrate at startup, tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# Source checkouts keep migrations/ at the project root; the wheel and the Docker image ship
# them next to alembic.ini in the working directory.
_ROOT_CANDIDATES = (Path(__file__).resolve().parents[4], Path.cwd())


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

    async with engine.begin() as conn:
        await conn.run_sync(run)
