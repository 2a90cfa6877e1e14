"""Question DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from darasa_db.schemas._common import InputModel, ReadModel, Text10K

__all__ = ["Question", "QuestionCreate", "QuestionDifficulty"]

QuestionDifficulty = Literal["easy", "medium", "hard"]
"""The values of the `questions_question_difficulty` enum."""


class Question(ReadModel):
    """An interview question of a job info; `user_id` is the job info's owner."""

    id: uuid.UUID
    user_id: str
    job_info_id: uuid.UUID
    text: str
    difficulty: QuestionDifficulty
    created_at: datetime
    updated_at: datetime


class QuestionCreate(InputModel):
    """A new question."""

    text: Text10K
    difficulty: QuestionDifficulty
