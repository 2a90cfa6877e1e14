"""`job_info`: a job a user prepares for."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import Enum, ForeignKey, ForeignKeyConstraint, Index, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["ExperienceLevel", "JobInfoChildMixin", "JobInfoRow"]


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

    __table_args__ = (
        Index("ix_job_info_user_id_created_at_id", "user_id", "created_at", "id"),
        # The target of the children's (job_info_id, user_id) foreign keys: a child always has
        # its job info's owner, and the key includes Citus's distribution column.
        UniqueConstraint("id", "user_id"),
    )


class JobInfoChildMixin:
    """A row of a job info (question, interview) that carries its owner's `user_id` too.

    Both foreign keys cascade: deleting the user or the job info deletes the row.
    """

    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True, sort_order=-9
    )
    job_info_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), nullable=False, index=True, sort_order=-8
    )

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            ForeignKeyConstraint(
                ["job_info_id", "user_id"], ["job_info.id", "job_info.user_id"], ondelete="CASCADE"
            ),
        )
