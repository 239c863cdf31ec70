"""messages.context_dropped: earlier messages left out of the context an answer was written in.

Revision ID: 5c0d7e3a91b2
Revises: e9217a2f3251
Create Date: 2026-12-02 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c0d7e3a91b2"
down_revision: str | None = "e9217a2f3251"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("context_dropped", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("context_dropped")
