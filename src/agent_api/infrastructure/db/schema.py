"""The schema as SQLAlchemy Core tables: the single source for migrations and queries.

Portable to SQLite and PostgreSQL: UUIDs use `Uuid`, JSON documents `JSON` (JSONB on
PostgreSQL), timestamps are timezone-aware UTC on both (see `UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out. SQLite keeps no offset, so values read back are tagged UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        # SQLite stores the wall time without its offset: convert first, or a +02:00 value
        # would be read back two hours off.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


Json: Any = JSON().with_variant(JSONB(), "postgresql")


def _created_at() -> Column[datetime]:
    return Column("created_at", UTCDateTime(), nullable=False)


users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("role", String(20), nullable=False, server_default="user"),
    Column("is_active", Boolean, nullable=False, server_default="1"),
    _created_at(),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("role IN ('user', 'admin', 'agent')", name="role"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("refresh_jti", String(64), nullable=False),
    _created_at(),
    Column("refreshed_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("revoked_reason", String(50), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("allowed_tools", Json, nullable=True),
    Column("allowed_models", Json, nullable=True),
    Column("rate_limit_per_minute", Integer, nullable=True),
    Column("rate_limit_per_day", Integer, nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    _created_at(),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("can_approve", Boolean, nullable=False, server_default="0"),
)

CONVERSATION_STATUSES = (
    "active",
    "running",
    "pending_approval",
    "awaiting_tools",
    "completed",
    "failed",
    "archived",
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(500), nullable=False, server_default=""),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("agent_type", String(20), nullable=False, server_default="auto"),
    Column("model", String(100), nullable=False),
    Column("message_count", Integer, nullable=False, server_default="0"),
    Column("tool_call_count", Integer, nullable=False, server_default="0"),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("total_tokens", Integer, nullable=False, server_default="0"),
    # The run lease: who runs the agent on this conversation and until when the claim holds.
    Column("run_id", Uuid, nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    _created_at(),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("last_message_at", UTCDateTime(), nullable=True),
    Column("deleted_at", UTCDateTime(), nullable=True),
    # A hash of the messages the client has seen so far (its side of the transcript): a
    # request without a conversation id whose messages extend it continues this conversation.
    Column("fingerprint", String(64), nullable=True),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in CONVERSATION_STATUSES) + ")", name="status"
    ),
    Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),
    Index("ix_conversations_user_id_fingerprint", "user_id", "fingerprint"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "conversation_id",
        Uuid,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("role", String(20), nullable=False),
    Column("content", Text, nullable=True),
    # The content parts (text, images, audio, files) in OpenAI's shape when the message had
    # more than text; `content` then holds the text parts joined.
    Column("content_parts", Json, nullable=True),
    Column("name", String(100), nullable=True),
    Column("tool_calls", Json, nullable=True),
    Column("tool_call_id", String(100), nullable=True),
    Column("model", String(100), nullable=True),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("latency_ms", Integer, nullable=True),
    Column("is_complete", Boolean, nullable=False, server_default="1"),
    # Earlier messages left out of the context this answer was written in (the budget).
    Column("context_dropped", Integer, nullable=False, server_default="0"),
    _created_at(),
    CheckConstraint("role IN ('system', 'user', 'assistant', 'tool')", name="role"),
    UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_id_seq"),
)

TOOL_EXECUTION_STATUSES = (
    "pending_approval",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "rejected",
    "cancelled",
)

tool_executions = Table(
    "tool_executions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("api_key_id", Uuid, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True),
    Column(
        "conversation_id",
        Uuid,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("message_id", Uuid, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("tool_call_id", String(100), nullable=True),
    Column("tool_name", String(100), nullable=False),
    Column("arguments", Json, nullable=True),
    Column("result", Json, nullable=True),
    Column("error_code", String(50), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("duration_ms", Integer, nullable=True),
    # Approval: the decision is recorded on the execution it governs.
    Column("requires_approval", Boolean, nullable=False, server_default="0"),
    Column("approval_reason", Text, nullable=True),
    Column("original_arguments", Json, nullable=True),
    Column("edited_arguments", Json, nullable=True),
    Column("decision", String(10), nullable=True),
    Column("decided_by", Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("decision_reason", Text, nullable=True),
    _created_at(),
    Column("completed_at", UTCDateTime(), nullable=True),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in TOOL_EXECUTION_STATUSES) + ")", name="status"
    ),
    CheckConstraint("decision IN ('approved', 'rejected')", name="decision"),
    Index("ix_tool_executions_user_id_created_at", "user_id", "created_at"),
    Index("ix_tool_executions_conversation_id_status", "conversation_id", "status"),
)

llm_usage = Table(
    "llm_usage",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("api_key_id", Uuid, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True),
    Column(
        "conversation_id",
        Uuid,
        ForeignKey("conversations.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("model", String(100), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    _created_at(),
    Index("ix_llm_usage_user_id_created_at", "user_id", "created_at"),
)
