"""`users`: people, keyed by their auth provider's id."""

from __future__ import annotations

from sqlalchemy import Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin

__all__ = ["UserRow"]


class UserRow(TimestampMixin, Base):
    """A user; `email` is unique case-insensitively."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(Text, primary_key=True, sort_order=-10)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    image_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("uq_users_email_lower", func.lower(email), unique=True),)
