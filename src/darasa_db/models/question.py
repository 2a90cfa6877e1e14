"""`questions`: interview questions generated for a job info."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import Enum, ForeignKey, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["QuestionDifficulty", "QuestionRow"]


class QuestionDifficulty(enum.StrEnum):
    """Values of the `questions_question_difficulty` enum."""

    easy = "easy"
    medium = "medium"
    hard = "hard"


difficulty_enum = Enum(
    *[level.value for level in QuestionDifficulty], name="questions_question_difficulty"
)


class QuestionRow(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A question, owned through its job info."""

    __tablename__ = "questions"

    job_info_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("job_info.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    text: Mapped[str] = mapped_column(Text, nullable=False)
    difficulty: Mapped[str] = mapped_column(difficulty_enum, nullable=False)
