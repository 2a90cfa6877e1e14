"""User DTOs."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from pydantic import Field, field_validator

from darasa_db.schemas._common import (
    Email,
    InputModel,
    ReadModel,
    Text200,
    Text255,
    Text1000,
    UpdateModel,
    reject_null,
)

__all__ = ["ErasureReport", "User", "UserCreate", "UserUpdate", "UserUpsert", "email_key"]

UserId = Text255
Name = Text200
ImageUrl = Text1000
PasswordHash = Text1000


def email_key(email: str) -> str:
    """The form emails are compared in: NFKC-normalised and case-folded, in Python.

    Uniqueness is enforced on this key, not on SQL `lower(email)`, whose folding depends on
    the database's collation (under `C` it folds ASCII letters only).
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())


class User(ReadModel):
    """A user as stored."""

    id: str
    email: str
    name: str
    image_url: str | None
    password_hash: str | None = Field(default=None, repr=False)
    created_at: datetime
    updated_at: datetime


class UserCreate(InputModel):
    """A new user; `id` defaults to a generated UUID string."""

    email: Email
    name: Name
    id: UserId | None = None
    image_url: ImageUrl | None = None
    password_hash: PasswordHash | None = Field(default=None, repr=False)


class UserUpsert(InputModel):
    """Insert-or-update by `id`, as an auth provider's sync sends it."""

    id: UserId
    email: Email
    name: Name
    image_url: ImageUrl | None = None


class UserUpdate(UpdateModel):
    """Changes to a user; only the fields given are written."""

    email: Email | None = None
    name: Name | None = None
    image_url: ImageUrl | None = None
    password_hash: PasswordHash | None = Field(default=None, repr=False)

    _not_null = field_validator("email", "name", mode="before")(reject_null)


class ErasureReport(ReadModel):
    """What `users.erase` deleted: the user's id and the rows deleted per table (a table name
    of the library's schema → count; every table is listed, zeros included)."""

    user_id: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Rows deleted in all tables."""
        return sum(self.counts.values())
