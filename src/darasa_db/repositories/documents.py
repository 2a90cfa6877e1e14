"""SQL implementation of `DocumentRepository`: binary COPY loads and HNSW similarity search."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Executable, bindparam, insert, literal_column, select

from darasa_db.cache.tags import user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import EMBEDDING_DIMENSIONS, DocumentRow
from darasa_db.models.base import table_of
from darasa_db.repositories._owned import UserOwnedRepository, UserOwnedTable
from darasa_db.repositories._rows import checked_row
from darasa_db.repositories._scope import set_rls_identity
from darasa_db.repositories._statements import check_limit, notifying, require, storable
from darasa_db.schemas import Document, DocumentCreate, DocumentMatch
from darasa_db.schemas._common import Embedding, JsonObject

__all__ = ["SqlDocumentRepository"]

t = table_of(DocumentRow)
ENTITY = "documents"
_EMBEDDING = TypeAdapter(Embedding)
_METADATA = TypeAdapter(JsonObject)


def _document(**row: Any) -> Document:
    embedding = row["embedding"]
    if embedding is not None:  # pgvector loads a Vector (text) or a numpy array (binary)
        to_list = getattr(embedding, "to_list", None) or embedding.tolist
        row["embedding"] = tuple(to_list())
    return Document.model_construct(**row)


def _match(**row: Any) -> DocumentMatch:
    similarity = row.pop("similarity")
    return DocumentMatch.model_construct(document=_document(**row), similarity=similarity)


COLUMNS = tuple(c.name for c in t.c)
ROW = checked_row(COLUMNS, _document)
MATCH = checked_row((*COLUMNS, "similarity"), _match)
ONE: ColumnElement[float] = literal_column("1.0")


def _insert() -> Executable:
    columns = ("user_id", "title", "content", "metadata", "embedding")
    return notifying(insert(t).values({c: bindparam(c) for c in columns}).returning(*t.c))


def _search(*, exact: bool, threshold: bool, metadata: bool) -> Executable:
    """ORDER BY cosine distance LIMIT k over the caller's documents.

    The approximate form lets the planner use the HNSW index; the exact form scans the caller's
    rows (a MATERIALIZED CTE cannot use the index), for when the index returns a short page.
    """
    distance = t.c.embedding.cosine_distance(bindparam("query"))
    conditions = [t.c.user_id == bindparam("user_id"), t.c.embedding.is_not(None)]
    if threshold:
        conditions.append(distance <= bindparam("max_distance"))
    if metadata:
        conditions.append(t.c.metadata.contains(bindparam("metadata")))
    if not exact:
        return (
            select(t, (ONE - distance).label("similarity"))
            .where(*conditions)
            .order_by(distance)
            .limit(bindparam("limit"))
        )
    mine = (
        select(t, distance.label("distance"))
        .where(*conditions)
        .cte("mine")
        .prefix_with("MATERIALIZED")
    )
    columns = [mine.c[c.name] for c in t.c]
    return (
        select(*columns, (ONE - mine.c.distance).label("similarity"))
        .order_by(mine.c.distance, mine.c.id)
        .limit(bindparam("limit"))
    )


def _search_builder(exact: bool, threshold: bool, metadata: bool) -> Callable[[], Executable]:
    return lambda: _search(exact=exact, threshold=threshold, metadata=metadata)


_SEARCHES = {flags: _search_builder(*flags) for flags in itertools.product((False, True), repeat=3)}


class SqlDocumentRepository(UserOwnedRepository[Document]):
    """Documents on PostgreSQL with pgvector (`get`, `list_for_user` and `delete` from
    `UserOwnedRepository`)."""

    _owned = UserOwnedTable(t, ENTITY, ROW)

    async def create(self, user_id: str, data: DocumentCreate) -> Document:
        require(data, DocumentCreate)
        params = {
            "user_id": user_id,
            "title": data.title,
            "content": data.content,
            "metadata": Jsonb(data.metadata),
            "embedding": _vector(data.embedding),
        }
        tags = (user_tag(ENTITY, user_id),)
        rows = await self._scope.write(_insert, params, ROW, tags, parent_id=user_id)
        if not rows:  # a user id that cannot be stored names no user
            raise NotFoundError("user", user_id)
        return rows[0]

    async def create_many(self, user_id: str, documents: Sequence[DocumentCreate]) -> int:
        for index, document in enumerate(documents):
            require(document, DocumentCreate, f"documents[{index}]")
        if not documents:
            return 0
        if not storable(user_id):
            raise NotFoundError("user", user_id)
        connector = self._scope.connector
        schema = connector.schema
        columns = "user_id, title, content, metadata, embedding"
        rls = connector.settings.row_level_security
        # PostgreSQL refuses COPY into a table under row-level security: stage it, then INSERT.
        target = "pg_temp.darasa_documents_load" if rls else f'"{schema}".documents'
        copy_sql = f"COPY {target} ({columns}) FROM STDIN (FORMAT BINARY)".encode()

        async def load(conn: psycopg.AsyncConnection[Any]) -> int:
            if conn.adapters.types.get("vector") is None:
                await connector.register_vector(conn)
            if rls:
                await set_rls_identity(conn, {"user_id": user_id})
                await conn.execute(
                    f'CREATE TEMP TABLE darasa_documents_load (LIKE "{schema}".documents '
                    "INCLUDING DEFAULTS) ON COMMIT DROP".encode()
                )
            async with conn.cursor().copy(copy_sql) as copy:
                # the embedding goes as vector_recv's bytes, packed from the tuple in one call
                copy.set_types(["text", "text", "text", "jsonb", "bytea"])
                for d in documents:
                    await copy.write_row(
                        (user_id, d.title, d.content, Jsonb(d.metadata), _packed(d.embedding))
                    )
            if rls:  # dropped now: the transaction may load again (ON COMMIT DROP is for errors)
                await conn.execute(
                    f'INSERT INTO "{schema}".documents ({columns}) '
                    f"SELECT {columns} FROM {target}".encode()
                )
                await conn.execute(f"DROP TABLE {target}".encode())
            return len(documents)

        try:
            count: int = await self._scope.run(load, (user_tag(ENTITY, user_id),))
        except NotFoundError:
            raise NotFoundError("user", user_id) from None
        return count

    async def similarity_search(
        self,
        embedding: Sequence[float],
        *,
        user_id: str,
        limit: int = 5,
        threshold: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[DocumentMatch]:
        """Nearest documents by cosine similarity; always `min(limit, matching)` rows.

        The HNSW index answers first; when it returns a short page (a filtered scan can, see
        pgvector issue #751) the caller's rows are searched exactly. Not cached.
        """
        check_limit(limit)
        query = _vector(_EMBEDDING.validate_python(embedding))
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between -1 and 1 (got {threshold!r})")
        params: dict[str, Any] = {"user_id": user_id, "query": query, "limit": limit}
        if threshold is not None:
            params["max_distance"] = 1.0 - threshold
        if metadata is not None:
            params["metadata"] = Jsonb(_METADATA.validate_python(metadata))
        flags = (threshold is not None, metadata is not None)
        rows = await self._scope.search(_SEARCHES[(False, *flags)], params, MATCH)
        if len(rows) < limit:
            rows = await self._scope.search(_SEARCHES[(True, *flags)], params, MATCH)
        return rows


def _vector(embedding: Sequence[float] | None) -> np.ndarray[Any, Any] | None:
    return None if embedding is None else np.asarray(embedding, dtype=np.float32)


_VECTOR = struct.Struct(f">HH{EMBEDDING_DIMENSIONS}f")


def _packed(embedding: Sequence[float] | None) -> bytes | None:
    """pgvector's binary format (dimensions, 0, big-endian float4s): twice as fast as numpy."""
    if embedding is None:
        return None
    try:
        return _VECTOR.pack(EMBEDDING_DIMENSIONS, 0, *embedding)
    except (struct.error, OverflowError):  # beyond float4: let the server refuse it as before
        header = struct.pack(">HH", EMBEDDING_DIMENSIONS, 0)
        return header + np.asarray(embedding, dtype=">f4").tobytes()
