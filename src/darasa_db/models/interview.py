"""`interviews`: mock interviews held for a job info."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["InterviewRow"]


class InterviewRow(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An interview, owned through its job info."""

    __tablename__ = "interviews"

    job_info_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("job_info.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    duration: Mapped[str] = mapped_column(Text, nullable=False)
    hume_chat_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    feedback: Mapped[str | None] = mapped_column(Text, nullable=True)
