"""`users`: people, keyed by their auth provider's id."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin

__all__ = ["UserRow"]


class UserRow(TimestampMixin, Base):
    """A user; `email` is unique case-insensitively (through `email_key`)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(Text, primary_key=True, sort_order=-10)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    image_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    email_key: Mapped[str] = mapped_column(Text, nullable=False, unique=True, sort_order=20)
    """`darasa_db.schemas.user.email_key(email)`: what makes emails unique case-insensitively."""
