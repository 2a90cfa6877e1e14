"""`questions`: interview questions generated for a job info."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, Text
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from darasa_db.models.job_info import JobInfoChildMixin

__all__ = ["QuestionDifficulty", "QuestionRow"]


class QuestionDifficulty(enum.StrEnum):
    """Values of the `questions_question_difficulty` enum."""

    easy = "easy"
    medium = "medium"
    hard = "hard"


difficulty_enum = Enum(
    *[level.value for level in QuestionDifficulty], name="questions_question_difficulty"
)


class QuestionRow(UUIDPrimaryKeyMixin, JobInfoChildMixin, TimestampMixin, Base):
    """A question of a job info, carrying the job info's `user_id`."""

    __tablename__ = "questions"

    text: Mapped[str] = mapped_column(Text, nullable=False)
    difficulty: Mapped[str] = mapped_column(difficulty_enum, nullable=False)
