"""API keys: `can_approve`, the permission to decide approvals (off for existing keys).

Revision ID: 3c1f0a9d7b42
Revises: 5c0d7e3a91b2
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c1f0a9d7b42"
down_revision: str | None = "5c0d7e3a91b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("can_approve", sa.Boolean(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("can_approve")
