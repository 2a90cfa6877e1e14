"""`job_info`: a job a user prepares for."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["ExperienceLevel", "JobInfoRow"]


class ExperienceLevel(enum.StrEnum):
    """Values of the `job_infos_experience_level` enum."""

    junior = "junior"
    mid_level = "mid-level"
    senior = "senior"


experience_level_enum = Enum(
    *[level.value for level in ExperienceLevel], name="job_infos_experience_level"
)


class JobInfoRow(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A job description owned by a user."""

    __tablename__ = "job_info"

    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    experience_level: Mapped[str] = mapped_column(experience_level_enum, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (Index("ix_job_info_user_id_created_at_id", "user_id", "created_at", "id"),)
