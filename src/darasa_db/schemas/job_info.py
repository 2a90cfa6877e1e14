"""Job info DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import field_validator

from darasa_db.schemas._common import (
    InputModel,
    ReadModel,
    Text100K,
    Text200,
    UpdateModel,
    reject_null,
)

__all__ = ["ExperienceLevel", "JobInfo", "JobInfoCreate", "JobInfoUpdate"]

ExperienceLevel = Literal["junior", "mid-level", "senior"]
"""The values of the `job_infos_experience_level` enum."""
Name = Text200
Title = Text200
Description = Text100K


class JobInfo(ReadModel):
    """A job a user prepares for."""

    id: uuid.UUID
    user_id: str
    name: str
    title: str | None
    experience_level: ExperienceLevel
    description: str
    created_at: datetime
    updated_at: datetime


class JobInfoCreate(InputModel):
    """A new job info."""

    name: Name
    title: Title | None = None
    experience_level: ExperienceLevel
    description: Description


class JobInfoUpdate(UpdateModel):
    """Changes to a job info; only the fields given are written."""

    name: Name | None = None
    title: Title | None = None
    experience_level: ExperienceLevel | None = None
    description: Description | None = None

    _not_null = field_validator("name", "experience_level", "description", mode="before")(
        reject_null
    )
