"""`interviews`: mock interviews held for a job info."""

from __future__ import annotations

from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from darasa_db.models.job_info import JobInfoChildMixin

__all__ = ["InterviewRow"]


class InterviewRow(UUIDPrimaryKeyMixin, JobInfoChildMixin, TimestampMixin, Base):
    """An interview of a job info, carrying the job info's `user_id`."""

    __tablename__ = "interviews"

    duration: Mapped[str] = mapped_column(Text, nullable=False)
    hume_chat_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    feedback: Mapped[str | None] = mapped_column(Text, nullable=True)
