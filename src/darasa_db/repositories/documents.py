"""SQL implementation of `DocumentRepository`: binary COPY loads, HNSW similarity search and
hybrid (full-text + vector) search fused by reciprocal rank."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, TypeAdapter, ValidationInfo, field_validator
from sqlalchemy import (
    Column,
    ColumnElement,
    Executable,
    FetchedValue,
    MetaData,
    Select,
    Table,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

from darasa_db.cache.tags import user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import EMBEDDING_DIMENSIONS, DocumentRow
from darasa_db.models.base import table_of
from darasa_db.models.document import TEXT_SEARCH_CONFIG
from darasa_db.repositories._owned import UserOwnedRepository, UserOwnedTable
from darasa_db.repositories._rows import checked_row
from darasa_db.repositories._scope import set_rls_identity
from darasa_db.repositories._statements import check_limit, notifying, require, storable
from darasa_db.schemas import Document, DocumentCreate, DocumentMatch, HybridMatch
from darasa_db.schemas._common import Embedding, JsonObject, Text10K

__all__ = ["HybridQuery", "SqlDocumentRepository"]

stored = table_of(DocumentRow)
SEARCH_COLUMN = "search_vector"
# The documents table as read and written: without the generated `search_vector`, which only
# the full-text ranking reads (no read pays for carrying it).
t = Table(
    stored.name,
    MetaData(schema=stored.schema),
    *(
        Column(
            c.name,
            c.type,
            primary_key=c.primary_key,
            nullable=c.nullable,
            server_default=None if c.server_default is None else FetchedValue(),
        )
        for c in stored.c
        if c.name != SEARCH_COLUMN
    ),
)
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


def _hybrid_match(**row: Any) -> HybridMatch:
    score, text_rank, vector_rank = row.pop("score"), row.pop("text_rank"), row.pop("vector_rank")
    return HybridMatch.model_construct(
        document=_document(**row), score=score, text_rank=text_rank, vector_rank=vector_rank
    )


COLUMNS = tuple(c.name for c in t.c)
ROW = checked_row(COLUMNS, _document)
MATCH = checked_row((*COLUMNS, "similarity"), _match)
HYBRID = checked_row((*COLUMNS, "score", "text_rank", "vector_rank"), _hybrid_match)
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


CANDIDATES_PER_LIMIT = 2
MIN_CANDIDATES = 20
"""Each ranking of `hybrid_search` offers max(2 * limit, 20) candidates to the fusion."""


def _candidates(limit: int) -> int:
    return max(CANDIDATES_PER_LIMIT * limit, MIN_CANDIDATES)


def _ranked(query: Select[Any], order: Any, name: str) -> Any:
    """`query` (id plus the ordering column) numbered 1, 2, … in `order`, as a CTE."""
    inner = query.subquery(f"{name}_candidates")
    return select(inner.c.id, func.row_number().over(order_by=order(inner.c)).label("rank")).cte(
        name
    )


def _hybrid(*, text: bool, vector: bool, metadata: bool, exact: bool) -> Executable:
    """One statement: the caller's documents ranked by full text and by cosine distance, the
    two rankings fused by reciprocal rank, best first.

    The approximate vector ranking lets the planner use the HNSW index; the exact one scans
    the caller's rows (a MATERIALIZED CTE), for when the index returned a short page.
    """
    d = stored
    owned: list[ColumnElement[bool]] = [d.c.user_id == bindparam("user_id")]
    if metadata:
        owned.append(d.c.metadata.contains(bindparam("metadata")))
    rankings: dict[str, Any] = {}  # the CTEs (id, rank) of each ranking asked for
    if vector:
        distance = d.c.embedding.cosine_distance(bindparam("query"))
        where = [*owned, d.c.embedding.is_not(None)]
        if exact:
            mine = (
                select(d.c.id, distance.label("distance"))
                .where(*where)
                .cte("mine")
                .prefix_with("MATERIALIZED")
            )
            nearest = select(mine.c.id, mine.c.distance).order_by(mine.c.distance, mine.c.id)
        else:
            nearest = select(d.c.id, distance.label("distance")).where(*where).order_by(distance)
        nearest = nearest.limit(bindparam("candidates"))
        rankings["vector"] = _ranked(nearest, lambda c: (c.distance, c.id), "vector_ranked")
    if text:
        config: ColumnElement[Any] = literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")
        tsquery = func.websearch_to_tsquery(config, bindparam("query_text"))
        rank = func.ts_rank_cd(d.c.search_vector, tsquery)
        matched = (
            select(d.c.id, rank.label("text_score"))
            .where(*owned, d.c.search_vector.bool_op("@@")(tsquery))
            .order_by(rank.desc(), d.c.id)
            .limit(bindparam("candidates"))
        )
        rankings["text"] = _ranked(matched, lambda c: (c.text_score.desc(), c.id), "text_ranked")

    def term(ranking: Any) -> ColumnElement[Any]:
        share = ONE / cast(bindparam("rrf_k") + ranking.c.rank, DOUBLE_PRECISION)
        return func.coalesce(share, literal_column("0"))

    if len(rankings) == 2:
        vectors, texts = rankings["vector"], rankings["text"]
        fused = select(
            func.coalesce(vectors.c.id, texts.c.id).label("id"),
            (term(vectors) + term(texts)).label("score"),
            texts.c.rank.label("text_rank"),
            vectors.c.rank.label("vector_rank"),
        ).select_from(vectors.join(texts, vectors.c.id == texts.c.id, full=True))
    else:
        (kind, only), *_ = rankings.items()
        unranked: ColumnElement[Any] = literal_column("NULL::bigint")
        fused = select(
            only.c.id,
            term(only).label("score"),
            (only.c.rank if kind == "text" else unranked).label("text_rank"),
            (only.c.rank if kind == "vector" else unranked).label("vector_rank"),
        )
    f = fused.cte("fused")
    return (
        select(*(d.c[name] for name in COLUMNS), f.c.score, f.c.text_rank, f.c.vector_rank)
        .select_from(f.join(d, d.c.id == f.c.id))
        .order_by(f.c.score.desc(), d.c.id)
        .limit(bindparam("limit"))
    )


def _hybrid_builder(
    text: bool, vector: bool, metadata: bool, exact: bool
) -> Callable[[], Executable]:
    return lambda: _hybrid(text=text, vector=vector, metadata=metadata, exact=exact)


_HYBRIDS = {flags: _hybrid_builder(*flags) for flags in itertools.product((False, True), repeat=4)}


class HybridQuery(BaseModel):
    """`hybrid_search`'s input, validated before any SQL: a text, an embedding or both.

    `query_text` is web-search syntax (`websearch_to_tsquery`); `rrf_k` is the fusion's
    constant (60 in the reciprocal rank fusion paper and pgvector's examples).
    """

    model_config = {"frozen": True}

    embedding: Embedding | None = None
    query_text: Text10K | None = Field(default=None, validate_default=True)
    rrf_k: int = Field(default=60, ge=1, le=1_000_000, strict=True)
    metadata: JsonObject | None = None

    @field_validator("query_text")
    @classmethod
    def _text_or_embedding(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if "embedding" in info.data and info.data["embedding"] is None:  # (not failed)
                raise ValueError("give a query_text, an embedding or both (both are None)")
            return None
        if not value.strip():
            raise ValueError("must contain a word (it is only whitespace)")
        return value


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

    async def hybrid_search(
        self,
        query_text: str | None,
        embedding: Sequence[float] | None,
        *,
        user_id: str,
        limit: int = 5,
        metadata: Mapping[str, Any] | None = None,
        rrf_k: int = 60,
    ) -> list[HybridMatch]:
        """The caller's documents by full text and by vector, fused by reciprocal rank.

        One statement; the HNSW index answers first and, when the page comes back short, the
        caller's rows are ranked exactly. Either input may be None, not both. Not cached.
        """
        check_limit(limit)
        q = HybridQuery(query_text=query_text, embedding=embedding, rrf_k=rrf_k, metadata=metadata)
        text, vector = q.query_text is not None, q.embedding is not None
        params: dict[str, Any] = {
            "user_id": user_id,
            "limit": limit,
            "candidates": _candidates(limit),
            "rrf_k": q.rrf_k,
            "query_text": q.query_text,
            "query": _vector(q.embedding),
        }
        if q.metadata is not None:
            params["metadata"] = Jsonb(q.metadata)
        flags = (text, vector, q.metadata is not None)
        rows = await self._scope.search(_HYBRIDS[(*flags, False)], params, HYBRID)
        if vector and len(rows) < limit:
            rows = await self._scope.search(_HYBRIDS[(*flags, True)], params, HYBRID)
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
