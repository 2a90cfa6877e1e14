"""`conversations`: chat conversations with their messages as a jsonb array."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["ConversationRow"]


class ConversationRow(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A conversation owned by a user; messages are appended atomically in SQL."""

    __tablename__ = "conversations"

    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(Text, nullable=False)
    messages: Mapped[list[Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    messages_version: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()"), sort_order=20
    )
    """The state of `messages`: a new random UUID at each change (migration 0006's trigger);
    NULL for a conversation created before 0006 and not changed since."""
    previous_messages_version: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), sort_order=20
    )
    """`messages_version` before the last change of `messages`."""

    __table_args__ = (
        Index("ix_conversations_updated_at", "updated_at"),
        Index("ix_conversations_user_id_created_at_id", "user_id", "created_at", "id"),
    )
