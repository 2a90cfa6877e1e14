"""Row-level security policies keyed on the transaction-local setting darasa.user_id.

The policies are inert until row-level security is enabled on the tables, which
`darasa_db.rls.enable(target)` does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_USER = "current_setting('darasa.user_id', true)"
CURRENT_EMAIL = "current_setting('darasa.email', true)"


def schema() -> str:
    """The schema the runner migrates (`darasa` unless configured)."""
    return op.get_context().version_table_schema or "darasa"


def policies(s: str) -> dict[str, list[str]]:
    """CREATE POLICY statements per table."""
    owned_job_info = (
        f'EXISTS (SELECT 1 FROM "{s}".job_info j '
        f"WHERE j.id = job_info_id AND j.user_id = {CURRENT_USER})"
    )
    by_user = f"user_id = {CURRENT_USER}"
    return {
        "users": [
            f'CREATE POLICY darasa_owner ON "{s}".users USING (id = {CURRENT_USER})',
            f'CREATE POLICY darasa_by_email ON "{s}".users FOR SELECT '
            f"USING (email_key = {CURRENT_EMAIL})",
        ],
        "job_info": [f'CREATE POLICY darasa_owner ON "{s}".job_info USING ({by_user})'],
        "questions": [f'CREATE POLICY darasa_owner ON "{s}".questions USING ({owned_job_info})'],
        "interviews": [f'CREATE POLICY darasa_owner ON "{s}".interviews USING ({owned_job_info})'],
        "documents": [f'CREATE POLICY darasa_owner ON "{s}".documents USING ({by_user})'],
        "conversations": [f'CREATE POLICY darasa_owner ON "{s}".conversations USING ({by_user})'],
    }


def upgrade() -> None:
    for statements in policies(schema()).values():
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    s = schema()
    for table in policies(s):
        op.execute(f'ALTER TABLE "{s}"."{table}" NO FORCE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{s}"."{table}" DISABLE ROW LEVEL SECURITY')
        op.execute(f'DROP POLICY IF EXISTS darasa_owner ON "{s}"."{table}"')
    op.execute(f'DROP POLICY IF EXISTS darasa_by_email ON "{s}".users')
