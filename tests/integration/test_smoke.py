from __future__ import annotations

from sqlalchemy import text

from agent_api.infrastructure.db.database import Database


async def test_rollback_db(db: Database) -> None:
    async with db.transaction() as conn:
        assert (await conn.execute(text("select count(*) from users"))).scalar() == 0
