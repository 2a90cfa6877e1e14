"""Conversations carry the version of their messages, so an append need not return them.

`messages_version` names the state of a conversation's messages: a random UUID given to each
new conversation and, by a BEFORE UPDATE OF messages trigger, to every change of its messages,
whoever makes it (a previous release's append, a host's own SQL, an edit made with
`session_replication_role = replica`: the trigger is ENABLE ALWAYS). Random values, compared
only for equality, name one state for good: a database restored from a backup, a failover to a
replica that missed commits or a dropped and recreated column never hand out a version again
for another state. The trigger also keeps the version the change started from in
`previous_messages_version`: an append whose process already holds that version takes the
messages it appended to from memory instead of from the server (see
`darasa_db.repositories.conversations`). Only `ALTER TABLE … DISABLE TRIGGER` gets past it.

Both columns are added without a default for existing rows (no table rewrite, no long lock):
a conversation created before this revision has no version until its first change, and the
first append to it returns its messages from the server.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER = "version_messages"
VERSIONS = ("messages_version", "previous_messages_version")


def schema() -> str:
    """The schema the runner migrates (`darasa` unless configured)."""
    return op.get_context().version_table_schema or "darasa"


def upgrade() -> None:
    s = schema()
    for column in VERSIONS:
        op.add_column("conversations", sa.Column(column, UUID(), nullable=True), schema=s)
    # Set after the columns exist: existing rows keep NULL (no rewrite, no long lock).
    op.execute(
        f'ALTER TABLE "{s}".conversations ALTER COLUMN messages_version '
        "SET DEFAULT gen_random_uuid()"
    )
    op.execute(
        f'CREATE FUNCTION "{s}".{TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
        "NEW.previous_messages_version := OLD.messages_version; "
        "NEW.messages_version := gen_random_uuid(); "
        "RETURN NEW; END $$"
    )
    op.execute(
        f'CREATE TRIGGER {TRIGGER} BEFORE UPDATE OF messages ON "{s}".conversations '
        f'FOR EACH ROW EXECUTE FUNCTION "{s}".{TRIGGER}()'
    )
    op.execute(f'ALTER TABLE "{s}".conversations ENABLE ALWAYS TRIGGER {TRIGGER}')


def downgrade() -> None:
    s = schema()
    op.execute(f'DROP TRIGGER {TRIGGER} ON "{s}".conversations')
    op.execute(f'DROP FUNCTION "{s}".{TRIGGER}()')
    for column in reversed(VERSIONS):
        op.drop_column("conversations", column, schema=s)
