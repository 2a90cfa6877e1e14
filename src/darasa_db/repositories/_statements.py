"""Statement shapes shared by the repositories: notifying writes, keyset pages, id parsing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, Table, bindparam, func, select, tuple_
from sqlalchemy.sql.dml import ReturningDelete, ReturningInsert, ReturningUpdate

from darasa_db.schemas._common import check_text

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "as_uuid",
    "check_limit",
    "children_page",
    "insert_child",
    "keyset_page",
    "notifying",
    "require",
    "row_of_owner",
    "storable",
]

M = TypeVar("M", bound=BaseModel)
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def notifying(
    dml: ReturningInsert[Any] | ReturningUpdate[Any] | ReturningDelete[Any],
) -> Select[Any]:
    """Wrap a write with RETURNING so the same statement sends `pg_notify` once per changed row.

    The notice travels with the write's own transaction: delivered on commit, dropped on rollback.
    """
    changed = dml.cte("changed")
    return select(
        *changed.c,
        func.pg_notify(bindparam("notify_channel"), bindparam("notify_payload")).label("notified"),
    )


def keyset_page(
    table: Table,
    owner: ColumnElement[bool],
    *,
    after: bool,
    columns: Sequence[ColumnElement[Any]] | None = None,
) -> Select[Any]:
    """Newest first by (created_at, id); with `after`, the rows older than row `:after`.

    `columns` (the table's own by default) are what each row returns."""
    query = select(*(table.c if columns is None else columns)).where(owner)
    if after:
        cursor = (
            select(table.c.created_at, table.c.id)
            .where(table.c.id == bindparam("after"), owner)
            .subquery("cursor")
        )
        query = query.join(
            cursor,
            tuple_(table.c.created_at, table.c.id) < tuple_(cursor.c.created_at, cursor.c.id),
        )
    return query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(bindparam("limit"))


def storable(value: str, max_length: int | None = None) -> bool:
    """False for text PostgreSQL cannot store (NUL, lone surrogates) or longer than
    `max_length`: such a key names no row."""
    if max_length is not None and len(value) > max_length:
        return False
    try:
        check_text(value)
    except ValueError:
        return False
    return True


def require(value: object, model: type[M], name: str = "data") -> M:
    """`value` when it is a `model`; `TypeError` naming the expected DTO otherwise (a dict is
    not validated into one: build the DTO, and see the validation errors where they arise)."""
    if not isinstance(value, model):
        raise TypeError(
            f"{name} must be a {model.__name__} from darasa_db.schemas, not "
            f"{type(value).__name__} (build it with {model.__name__}(...) or "
            f"{model.__name__}.model_validate(...))"
        )
    return value


def check_limit(limit: int) -> int:
    """Validate a page size."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT} (got {limit!r})")
    return limit


def as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    """`value` as a UUID, or None when it is not one (such a row cannot exist)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def row_of_owner(table: Table) -> ColumnElement[bool]:
    """`table.id = :id` and the row's own `user_id` is `:user_id`."""
    return (table.c.id == bindparam("id")) & (table.c.user_id == bindparam("user_id"))


def insert_child(table: Table, columns: tuple[str, ...]) -> Select[Any]:
    """INSERT a question or interview only when its job info `:job_info_id` belongs to
    `:user_id`; the row takes the job info's `id` and `user_id` (one co-located statement)."""
    from sqlalchemy import insert

    from darasa_db.models import JobInfoRow
    from darasa_db.models.base import table_of

    j = table_of(JobInfoRow)
    source = select(
        j.c.id, j.c.user_id, *(bindparam(c, type_=table.c[c].type) for c in columns)
    ).where(j.c.id == bindparam("job_info_id"), j.c.user_id == bindparam("user_id"))
    dml = insert(table).from_select(["job_info_id", "user_id", *columns], source)
    return notifying(dml.returning(*table.c))


def children_page(table: Table) -> Select[Any]:
    """A job info's children owned by `:user_id` (their own `user_id`: no join), newest first."""
    return (
        select(table)
        .where(
            table.c.job_info_id == bindparam("job_info_id"), table.c.user_id == bindparam("user_id")
        )
        .order_by(table.c.created_at.desc(), table.c.id.desc())
    )
