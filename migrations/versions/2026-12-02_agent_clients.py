"""Agent clients: the `awaiting_tools` status (a run parked for the client's tool results),
the conversation fingerprint (stateless threading) and messages' content parts (images,
audio, files).

Revision ID: 8e2b6f4c1d90
Revises: 3c1f0a9d7b42
Create Date: 2026-12-02 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "8e2b6f4c1d90"
down_revision: str | None = "3c1f0a9d7b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSON documents: JSONB on PostgreSQL, JSON text elsewhere.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_OLD = ("active", "running", "pending_approval", "completed", "failed", "archived")
_NEW = (
    "active",
    "running",
    "pending_approval",
    "awaiting_tools",
    "completed",
    "failed",
    "archived",
)


def _status_check(statuses: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint(op.f("ck_conversations_status"), type_="check")
        batch.create_check_constraint("status", _status_check(_NEW))
        batch.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
        batch.create_index(
            "ix_conversations_user_id_fingerprint", ["user_id", "fingerprint"], unique=False
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content_parts", JSON_DOC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("content_parts")
    op.execute("UPDATE conversations SET status = 'active' WHERE status = 'awaiting_tools'")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_user_id_fingerprint")
        batch.drop_column("fingerprint")
        batch.drop_constraint(op.f("ck_conversations_status"), type_="check")
        batch.create_check_constraint("status", _status_check(_OLD))
