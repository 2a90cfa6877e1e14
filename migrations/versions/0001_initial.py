"""Initial schema: users, job_info, questions, interviews, documents, conversations.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "job_info", "questions", "interviews", "documents", "conversations")


def schema() -> str:
    """The schema the runner migrates (`darasa` unless configured)."""
    return op.get_context().version_table_schema or "darasa"


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _uuid_pk() -> sa.Column[object]:
    return sa.Column(
        "id",
        postgresql.UUID(as_uuid=True),
        server_default=sa.text("gen_random_uuid()"),
        nullable=False,
    )


def upgrade() -> None:
    s = schema()
    # In public, not in the first schema of search_path ("$user" may be ours), so that every
    # role finds the type and its operators.
    op.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{s}"')
    level = postgresql.ENUM(
        "junior",
        "mid-level",
        "senior",
        name="job_infos_experience_level",
        schema=s,
        create_type=False,
    )
    difficulty = postgresql.ENUM(
        "easy", "medium", "hard", name="questions_question_difficulty", schema=s, create_type=False
    )
    level.create(op.get_bind())
    difficulty.create(op.get_bind())

    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("image_url", sa.String(length=1000), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        *_timestamps(),
        # NFKC + casefold of email, computed in Python: SQL lower() folds ASCII only under C.
        sa.Column("email_key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email_key", name="uq_users_email_key"),
        schema=s,
    )

    op.create_table(
        "job_info",
        _uuid_pk(),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("experience_level", level, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"], [f"{s}.users.id"], name="fk_job_info_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_info"),
        schema=s,
    )
    op.create_index("ix_job_info_user_id", "job_info", ["user_id"], schema=s)
    op.create_index(
        "ix_job_info_user_id_created_at_id", "job_info", ["user_id", "created_at", "id"], schema=s
    )

    for table, extra in (
        (
            "questions",
            [
                sa.Column("text", sa.Text(), nullable=False),
                sa.Column("difficulty", difficulty, nullable=False),
            ],
        ),
        (
            "interviews",
            [
                sa.Column("duration", sa.Text(), nullable=False),
                sa.Column("hume_chat_id", sa.Text(), nullable=True),
                sa.Column("feedback", sa.Text(), nullable=True),
            ],
        ),
    ):
        op.create_table(
            table,
            _uuid_pk(),
            sa.Column("job_info_id", postgresql.UUID(as_uuid=True), nullable=False),
            *extra,
            *_timestamps(),
            sa.ForeignKeyConstraint(
                ["job_info_id"],
                [f"{s}.job_info.id"],
                name=f"fk_{table}_job_info_id_job_info",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            schema=s,
        )
        op.create_index(f"ix_{table}_job_info_id", table, ["job_info_id"], schema=s)

    op.create_table(
        "documents",
        _uuid_pk(),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "metadata", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("embedding", pgvector.sqlalchemy.Vector(1536), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"], [f"{s}.users.id"], name="fk_documents_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        schema=s,
    )
    op.create_index("ix_documents_user_id", "documents", ["user_id"], schema=s)
    op.create_index("ix_documents_created_at", "documents", ["created_at"], schema=s)
    op.create_index(
        "ix_documents_user_id_created_at_id", "documents", ["user_id", "created_at", "id"], schema=s
    )
    op.create_index(
        "ix_documents_embedding_hnsw",
        "documents",
        ["embedding"],
        schema=s,
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )

    op.create_table(
        "conversations",
        _uuid_pk(),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column(
            "messages", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"],
            [f"{s}.users.id"],
            name="fk_conversations_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        schema=s,
    )
    op.create_index("ix_conversations_user_id", "conversations", ["user_id"], schema=s)
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"], schema=s)
    op.create_index(
        "ix_conversations_user_id_created_at_id",
        "conversations",
        ["user_id", "created_at", "id"],
        schema=s,
    )

    # updated_at changes on every UPDATE, whoever issues it.
    op.execute(
        f'CREATE FUNCTION "{s}".set_updated_at() RETURNS trigger LANGUAGE plpgsql AS '
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    for table in TABLES:
        op.execute(
            f'CREATE TRIGGER set_updated_at BEFORE UPDATE ON "{s}"."{table}" '
            f'FOR EACH ROW EXECUTE FUNCTION "{s}".set_updated_at()'
        )


def downgrade() -> None:
    s = schema()
    for table in reversed(TABLES):
        op.drop_table(table, schema=s)
    op.execute(f'DROP FUNCTION IF EXISTS "{s}".set_updated_at()')
    op.execute(f'DROP TYPE IF EXISTS "{s}".questions_question_difficulty')
    op.execute(f'DROP TYPE IF EXISTS "{s}".job_infos_experience_level')
