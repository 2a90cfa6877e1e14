"""Full-text search on documents: a generated `search_vector` column and its GIN index.

The column holds `to_tsvector` of the title (weight A) and the content (weight B) in the
`english` text search configuration; `documents.hybrid_search` ranks it. Adding a stored
generated column rewrites the table once.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expression as of this revision (a later change to the models must not change history).
SEARCH_VECTOR = (
    "(setweight(to_tsvector('english'::regconfig, title), 'A'::\"char\") || "
    "setweight(to_tsvector('english'::regconfig, content), 'B'::\"char\"))"
)


def schema() -> str:
    """The schema the runner migrates (`darasa` unless configured)."""
    return op.get_context().version_table_schema or "darasa"


def upgrade() -> None:
    s = schema()
    op.add_column(
        "documents",
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(SEARCH_VECTOR, persisted=True),
            nullable=True,
        ),
        schema=s,
    )
    op.create_index(
        "ix_documents_search_vector",
        "documents",
        ["search_vector"],
        schema=s,
        postgresql_using="gin",
    )


def downgrade() -> None:
    s = schema()
    op.drop_index("ix_documents_search_vector", table_name="documents", schema=s)
    op.drop_column("documents", "search_vector", schema=s)
