"""Interview DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import field_validator

from darasa_db.schemas._common import (
    InputModel,
    ReadModel,
    Text50,
    Text100K,
    Text255,
    UpdateModel,
    reject_null,
)

__all__ = ["Interview", "InterviewCreate", "InterviewUpdate"]


class Interview(ReadModel):
    """A mock interview held for a job info; `user_id` is the job info's owner."""

    id: uuid.UUID
    user_id: str
    job_info_id: uuid.UUID
    duration: str
    hume_chat_id: str | None
    feedback: str | None
    created_at: datetime
    updated_at: datetime


class InterviewCreate(InputModel):
    """A new interview; `duration` is text such as "15 minutes"."""

    duration: Text50
    hume_chat_id: Text255 | None = None
    feedback: Text100K | None = None


class InterviewUpdate(UpdateModel):
    """Changes to an interview, typically its feedback once it ends."""

    duration: Text50 | None = None
    hume_chat_id: Text255 | None = None
    feedback: Text100K | None = None

    _not_null = field_validator("duration", mode="before")(reject_null)
