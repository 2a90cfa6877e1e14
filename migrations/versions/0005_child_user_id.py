"""Questions and interviews carry their owner's `user_id` (a Citus-ready schema).

Every user-owned table can then be distributed and co-located by `user_id`. The column is
backfilled from the job info, then NOT NULL with a foreign key to `users`; the foreign key to
`job_info` becomes `(job_info_id, user_id)` → `job_info (id, user_id)` (a new UNIQUE), so a
child always has its job info's owner. Ownership checks and the row-level security policies
of both tables read the row's own `user_id`, with no join.

Rolling deploys: the previous release inserts children without `user_id`; a BEFORE INSERT
trigger fills it from the job info when it is NULL, until a later release drops the trigger.

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILDREN = ("questions", "interviews")
CURRENT_USER = "current_setting('darasa.user_id', true)"
FILL = "fill_user_id_from_job_info"


def schema() -> str:
    """The schema the runner migrates (`darasa` unless configured)."""
    return op.get_context().version_table_schema or "darasa"


def _policy(s: str, table: str, using: str) -> None:
    op.execute(f'DROP POLICY IF EXISTS darasa_owner ON "{s}"."{table}"')
    op.execute(f'CREATE POLICY darasa_owner ON "{s}"."{table}" USING ({using})')


def _backfill(s: str) -> None:
    """Copy each child's job info's `user_id`, leaving `updated_at` as it was. Row-level
    security forced on the owner (`rls.enable(force=True)`) is lifted meanwhile: the policies
    would hide every row from a migration that has no `darasa.user_id`."""
    forced = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname IN ('job_info', 'questions', 'interviews') "
                "AND c.relforcerowsecurity ORDER BY c.relname"
            ),
            {"s": s},
        )
        .scalars()
        .all()
    )
    for table in forced:
        op.execute(f'ALTER TABLE "{s}"."{table}" NO FORCE ROW LEVEL SECURITY')
    for table in CHILDREN:
        op.execute(f'ALTER TABLE "{s}"."{table}" DISABLE TRIGGER set_updated_at')
        op.execute(
            f'UPDATE "{s}"."{table}" AS c SET user_id = j.user_id '
            f'FROM "{s}".job_info AS j WHERE j.id = c.job_info_id'
        )
        op.execute(f'ALTER TABLE "{s}"."{table}" ENABLE TRIGGER set_updated_at')
    for table in forced:
        op.execute(f'ALTER TABLE "{s}"."{table}" FORCE ROW LEVEL SECURITY')


def upgrade() -> None:
    s = schema()
    op.create_unique_constraint("uq_job_info_id_user_id", "job_info", ["id", "user_id"], schema=s)
    op.execute(
        f'CREATE FUNCTION "{s}".{FILL}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
        f'SELECT j.user_id INTO NEW.user_id FROM "{s}".job_info j WHERE j.id = NEW.job_info_id; '
        "RETURN NEW; END $$"
    )
    for table in CHILDREN:
        op.add_column(table, sa.Column("user_id", sa.Text(), nullable=True), schema=s)
    _backfill(s)
    for table in CHILDREN:
        op.alter_column(table, "user_id", nullable=False, schema=s)
        op.execute(
            f'CREATE TRIGGER {FILL} BEFORE INSERT ON "{s}"."{table}" FOR EACH ROW '
            f'WHEN (NEW.user_id IS NULL) EXECUTE FUNCTION "{s}".{FILL}()'
        )
        op.drop_constraint(f"fk_{table}_job_info_id_job_info", table, "foreignkey", schema=s)
        op.create_foreign_key(
            f"fk_{table}_job_info_id_job_info",
            table,
            "job_info",
            ["job_info_id", "user_id"],
            ["id", "user_id"],
            source_schema=s,
            referent_schema=s,
            ondelete="CASCADE",
        )
        op.create_foreign_key(
            f"fk_{table}_user_id_users",
            table,
            "users",
            ["user_id"],
            ["id"],
            source_schema=s,
            referent_schema=s,
            ondelete="CASCADE",
        )
        op.create_index(f"ix_{table}_user_id", table, ["user_id"], schema=s)
        _policy(s, table, f"user_id = {CURRENT_USER}")


def downgrade() -> None:
    s = schema()
    for table in CHILDREN:
        _policy(
            s,
            table,
            f'EXISTS (SELECT 1 FROM "{s}".job_info j '
            f"WHERE j.id = job_info_id AND j.user_id = {CURRENT_USER})",
        )
        op.drop_index(f"ix_{table}_user_id", table_name=table, schema=s)
        op.drop_constraint(f"fk_{table}_user_id_users", table, "foreignkey", schema=s)
        op.drop_constraint(f"fk_{table}_job_info_id_job_info", table, "foreignkey", schema=s)
        op.create_foreign_key(
            f"fk_{table}_job_info_id_job_info",
            table,
            "job_info",
            ["job_info_id"],
            ["id"],
            source_schema=s,
            referent_schema=s,
            ondelete="CASCADE",
        )
        op.execute(f'DROP TRIGGER {FILL} ON "{s}"."{table}"')
        op.drop_column(table, "user_id", schema=s)
    op.execute(f'DROP FUNCTION "{s}".{FILL}()')
    op.drop_constraint("uq_job_info_id_user_id", "job_info", "unique", schema=s)
