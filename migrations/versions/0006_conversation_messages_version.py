"""Conversations carry the version of their messages, so an append need not return them.

`messages_version` names the state of a conversation's messages: a value from the sequence
`conversation_messages_version`, given to each new conversation and, by a BEFORE UPDATE OF
messages trigger, to every change of its messages, whoever makes it (a previous release's
append, a host's own SQL). A value is never handed out twice, even by a transaction that rolls
back. The values come from `next_messages_version()`, a SECURITY DEFINER function, so that an
application role granted only its tables (docs/operations.md) needs no right on the sequence.
The trigger also keeps the version the change started from in `previous_messages_version`: an
append whose process already holds that version takes the messages it appended to from memory
instead of from the server (see `darasa_db.repositories.conversations`).

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

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE = "conversation_messages_version"
NEXT = "next_messages_version"
TRIGGER = "version_messages"


def schema() -> str:
    """The schema the runner migrates (`darasa` unless configured)."""
    return op.get_context().version_table_schema or "darasa"


def upgrade() -> None:
    s = schema()
    op.execute(f'CREATE SEQUENCE "{s}".{SEQUENCE} AS bigint')
    op.execute(
        f'CREATE FUNCTION "{s}".{NEXT}() RETURNS bigint LANGUAGE sql VOLATILE SECURITY DEFINER '
        "SET search_path = pg_catalog, pg_temp "
        f"AS $$ SELECT nextval('\"{s}\".{SEQUENCE}'::regclass) $$"
    )
    for column in ("messages_version", "previous_messages_version"):
        op.add_column("conversations", sa.Column(column, sa.BigInteger(), nullable=True), schema=s)
    # Set after the columns exist: existing rows keep NULL (no rewrite, no long lock).
    op.execute(
        f'ALTER TABLE "{s}".conversations ALTER COLUMN messages_version SET DEFAULT "{s}".{NEXT}()'
    )
    op.execute(
        f'CREATE FUNCTION "{s}".{TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
        "NEW.previous_messages_version := OLD.messages_version; "
        f'NEW.messages_version := "{s}".{NEXT}(); '
        "RETURN NEW; END $$"
    )
    op.execute(
        f'CREATE TRIGGER {TRIGGER} BEFORE UPDATE OF messages ON "{s}".conversations '
        f'FOR EACH ROW EXECUTE FUNCTION "{s}".{TRIGGER}()'
    )


def downgrade() -> None:
    s = schema()
    op.execute(f'DROP TRIGGER {TRIGGER} ON "{s}".conversations')
    op.execute(f'DROP FUNCTION "{s}".{TRIGGER}()')
    for column in ("previous_messages_version", "messages_version"):
        op.drop_column("conversations", column, schema=s)
    op.execute(f'DROP FUNCTION "{s}".{NEXT}()')
    op.execute(f'DROP SEQUENCE "{s}".{SEQUENCE}')
