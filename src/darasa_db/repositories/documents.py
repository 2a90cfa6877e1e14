"""SQL implementation of `DocumentRepository`: binary COPY loads, HNSW similarity search and
hybrid (full-text + vector) search fused by reciprocal rank."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from pgvector.sqlalchemy import HALFVEC
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, TypeAdapter, ValidationInfo, field_validator
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Executable,
    FetchedValue,
    MetaData,
    Select,
    Table,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, REGCLASS

from darasa_db._connector import Connector
from darasa_db._errors_map import UnknownTypeError
from darasa_db.cache.tags import user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import EMBEDDING_DIMENSIONS, DocumentRow
from darasa_db.models.base import table_of
from darasa_db.models.document import TEXT_SEARCH_CONFIG
from darasa_db.repositories._owned import UserOwnedRepository, UserOwnedTable
from darasa_db.repositories._rows import checked_row, scalar_column
from darasa_db.repositories._scope import TransactionScope, set_rls_identity
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
Work = Callable[[psycopg.AsyncConnection[Any]], Any]
_EMBEDDING = TypeAdapter(Embedding)
_METADATA = TypeAdapter(JsonObject)


def _document(**row: Any) -> Document:
    embedding = row["embedding"]
    if embedding is not None:  # pgvector loads a Vector (text) or a numpy array (binary)
        to_list = getattr(embedding, "to_list", None) or getattr(embedding, "tolist", None)
        if to_list is None:  # str or bytes: a type the connection has not registered
            raise UnknownTypeError("documents.embedding", embedding)
        row["embedding"] = tuple(to_list())
    return Document.model_construct(**row)


def _match(**row: Any) -> DocumentMatch:
    similarity = row.pop("similarity")
    return DocumentMatch.model_construct(document=_document(**row), similarity=similarity)


def _counted_match(**row: Any) -> tuple[DocumentMatch | None, bool]:
    indexed = row.pop("indexed")
    return (None if row["id"] is None else _match(**row)), indexed


def _hybrid_match(**row: Any) -> HybridMatch:
    score, text_rank, vector_rank = row.pop("score"), row.pop("text_rank"), row.pop("vector_rank")
    return HybridMatch.model_construct(
        document=_document(**row), score=score, text_rank=text_rank, vector_rank=vector_rank
    )


COLUMNS = tuple(c.name for c in t.c)
ROW = checked_row(COLUMNS, _document)
MATCH = checked_row((*COLUMNS, "similarity"), _match)
COUNTED = checked_row((*COLUMNS, "similarity", "indexed"), _counted_match)
INDEXED = scalar_column("indexed")
HYBRID = checked_row((*COLUMNS, "score", "text_rank", "vector_rank"), _hybrid_match)
ONE: ColumnElement[float] = literal_column("1.0")


def _insert() -> Executable:
    columns = ("user_id", "title", "content", "metadata", "embedding")
    return notifying(insert(t).values({c: bindparam(c) for c in columns}).returning(*t.c))


EXACT_UP_TO = 1_000
INDEX_SHARE = 0.1
"""A search whose matching documents (the caller's, passing `metadata`) are fewer than
EXACT_UP_TO or INDEX_SHARE of the table is exact, in one statement: scanning them costs less
than the index's walk past everyone else's, and a filtered HNSW scan that keeps a smaller
share recalls less (0.96 at 6 %, 0.76 at 1 %; docs/performance.md)."""
SCAN_TUPLES = 5_000
"""pgvector 0.8's `hnsw.max_scan_tuples` for a search: how far a filtered index scan walks
before giving up (a page it leaves short is then searched exactly)."""
NEAREST = 40
"""Index candidates re-sorted by exact distance for a page (at least `limit`)."""
HALFVEC_FROM = (0, 7)
"""pgvector from which migration 0004 indexes `embedding::halfvec(1536)` instead."""
ITERATIVE_FROM = (0, 8)
"""pgvector from which index scans can go on past `ef_search` candidates (iterative scans)."""


def _distance(table: Table = t, *, half: bool = False) -> ColumnElement[float]:
    """Cosine distance to the query: in full precision, or as the half-precision index has it
    (the index expression of migration 0004, so that the planner can use the index)."""
    distance: ColumnElement[float]
    if not half:
        distance = table.c.embedding.cosine_distance(bindparam("query"))
    else:
        dims = HALFVEC(EMBEDDING_DIMENSIONS)
        distance = cast(table.c.embedding, dims).cosine_distance(cast(bindparam("query"), dims))
    return distance


def _conditions(metadata: bool) -> list[ColumnElement[bool]]:
    conditions = [t.c.user_id == bindparam("user_id"), t.c.embedding.is_not(None)]
    if metadata:
        conditions.append(t.c.metadata.contains(bindparam("metadata")))
    return conditions


def _page(rows: Any, threshold: bool) -> Select[Any]:
    """The best `limit` of `rows` (documents with their exact `distance`), with `similarity`."""
    similarity = ONE - rows.c.distance
    page = (
        select(*(rows.c[name] for name in COLUMNS), similarity.label("similarity"))
        .order_by(rows.c.distance, rows.c.id)
        .limit(bindparam("limit"))
    )
    return page.where(rows.c.distance <= bindparam("max_distance")) if threshold else page


_PG_CLASS = table("pg_class", column("oid"), column("reltuples"), schema="pg_catalog")


def _index_from() -> Any:
    """How many matching documents send a search to the index: EXACT_UP_TO, or INDEX_SHARE
    of the table's rows as the statistics estimate them (`reltuples`)."""
    share = func.ceil(bindparam("index_share") * _PG_CLASS.c.reltuples)
    bound = cast(func.greatest(bindparam("exact_up_to"), share), BigInteger)
    table_oid = cast(bindparam("documents"), REGCLASS)
    return select(bound).where(_PG_CLASS.c.oid == table_oid).scalar_subquery()


def _matching(metadata: bool) -> Select[Any]:
    """The caller's documents passing `metadata`, up to `_index_from()` of them."""
    return select(t.c.id, t.c.embedding).where(*_conditions(metadata)).limit(_index_from())


def _indexed(metadata: bool) -> Select[Any]:
    """One row, one column: whether the search is for the index (see `_index_from`)."""
    limited = _matching(metadata).subquery("matching")
    return select((func.count() >= _index_from()).label("indexed")).select_from(limited)


def _exact(*, threshold: bool, metadata: bool, counted: bool) -> Executable:
    """The caller's rows sorted by exact distance (a MATERIALIZED CTE cannot use the index).

    `counted` first gathers the matching rows up to `_index_from()`; when they reach it,
    no distance is computed and one row of NULLs with `indexed` true comes back (the index
    should answer); otherwise the page, each row with `indexed` false (one row of NULLs when
    nothing matches).
    """
    if not counted:
        mine = select(t, _distance().label("distance")).where(*_conditions(metadata))
        return _page(mine.cte("mine").prefix_with("MATERIALIZED"), threshold)
    matching = _matching(metadata).cte("matching").prefix_with("MATERIALIZED")
    indexed = select(func.count()).select_from(matching).scalar_subquery() >= _index_from()
    distance = matching.c.embedding.cosine_distance(bindparam("query"))
    ranked = select(matching.c.id, distance.label("distance")).where(~indexed)
    if threshold:  # (NaN, a zero vector's distance, is above every bound in PostgreSQL)
        ranked = ranked.where(distance <= bindparam("max_distance"))
    r = ranked.order_by(distance, matching.c.id).limit(bindparam("limit")).subquery("ranked")
    flag = select(indexed.label("indexed")).subquery("counted")
    page = r.join(t, t.c.id == r.c.id)
    return (
        select(*(t.c[name] for name in COLUMNS), (ONE - r.c.distance).label("similarity"), flag)
        .select_from(flag.outerjoin(page, true()))
        .order_by(r.c.distance, r.c.id)
    )


def _nearest(*, metadata: bool, half: bool) -> Executable:
    """The `candidates` nearest of the caller's rows by the HNSW index (its expression), then
    the best `limit` of them by exact distance (an index scan may return them out of order).

    No threshold here: applied inside the scan it would walk the graph far past the page.
    """
    candidates = (
        select(t, _distance().label("distance"))
        .where(*_conditions(metadata))
        .order_by(_distance(half=half))
        .limit(bindparam("candidates"))
    )
    return _page(candidates.cte("nearest").prefix_with("MATERIALIZED"), False)


def _builder(make: Callable[..., Executable], **flags: bool) -> Callable[[], Executable]:
    return lambda: make(**flags)


_EXACT = {
    (threshold, metadata, counted): _builder(
        _exact, threshold=threshold, metadata=metadata, counted=counted
    )
    for threshold, metadata, counted in itertools.product((False, True), repeat=3)
}
_INDEXED = {metadata: _builder(_indexed, metadata=metadata) for metadata in (False, True)}
_NEAREST = {
    (metadata, half): _builder(_nearest, metadata=metadata, half=half)
    for metadata, half in itertools.product((False, True), repeat=2)
}


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


def _hybrid(*, text: bool, vector: bool, metadata: bool, exact: bool, half: bool) -> Executable:
    """One statement: the caller's documents ranked by full text and by cosine distance, the
    two rankings fused by reciprocal rank, best first.

    The approximate vector ranking lets the planner use the HNSW index (`half`: the
    half-precision one) and ranks its candidates by exact distance; the exact one scans the
    caller's rows (a MATERIALIZED CTE).
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
            nearest = (
                select(d.c.id, distance.label("distance"))
                .where(*where)
                .order_by(_distance(d, half=half))
            )
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


_HYBRID_FLAGS = ("text", "vector", "metadata", "exact", "half")
_HYBRIDS = {
    flags: _builder(_hybrid, **dict(zip(_HYBRID_FLAGS, flags, strict=True)))
    for flags in itertools.product((False, True), repeat=5)
}


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

    _owned = UserOwnedTable(t, ENTITY, ROW, binary=True)  # (embeddings parse ~4x faster)

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

        While the matching documents are fewer than `EXACT_UP_TO` or `INDEX_SHARE` of the
        table, one statement counts and sorts them exactly; otherwise the HNSW index answers
        (iterative scans on pgvector 0.8, candidates re-sorted by exact distance, the threshold
        applied after the scan) and a page it leaves short is searched exactly. Not cached.
        """
        check_limit(limit)
        query = _vector(_EMBEDDING.validate_python(embedding))
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between -1 and 1 (got {threshold!r})")
        params = self._search_params(user_id, limit, query)
        if threshold is not None:
            params["max_distance"] = 1.0 - threshold
        if metadata is not None:
            params["metadata"] = Jsonb(_METADATA.validate_python(metadata))
        flags = (threshold is not None, metadata is not None)
        counted = await self._scope.search(_EXACT[(*flags, True)], params, COUNTED)
        if not counted or not counted[0][1]:  # (none: a user id no row can have)
            return [match for match, _ in counted if match is not None]
        connector = self._scope.connector
        exact = connector.sql(_EXACT[(*flags, False)])

        async def page(conn: psycopg.AsyncConnection[Any]) -> list[DocumentMatch]:
            half = _has(connector, HALFVEC_FROM)
            nearest = connector.sql(_NEAREST[(metadata is not None, half)])
            cur = conn.cursor(row_factory=MATCH, binary=True)
            await cur.execute(nearest, params, prepare=False)
            rows = await cur.fetchall()
            if len(rows) < limit:  # the scan gave up (max_scan_tuples) or has no iterative scans
                await cur.execute(exact, params, prepare=False)
                return await cur.fetchall()
            return rows if threshold is None else [m for m in rows if m.similarity >= threshold]

        params["candidates"] = max(limit, NEAREST)
        rows: list[DocumentMatch] = await self._scope.snapshot(self._index_scan(page, params))
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

        The vector ranking is exact while the matching documents are few (as in
        `similarity_search`), else from the HNSW index with the same settings, and exact again
        when that page comes back short. Either input may be None, not both. Not cached.
        """
        check_limit(limit)
        q = HybridQuery(query_text=query_text, embedding=embedding, rrf_k=rrf_k, metadata=metadata)
        text, vector = q.query_text is not None, q.embedding is not None
        params = self._search_params(user_id, limit, _vector(q.embedding))
        params |= {"candidates": _candidates(limit), "rrf_k": q.rrf_k, "query_text": q.query_text}
        if q.metadata is not None:
            params["metadata"] = Jsonb(q.metadata)
        flags = (text, vector, q.metadata is not None)
        exact = _HYBRIDS[(*flags, True, False)]
        if vector:
            indexed = await self._scope.search(_INDEXED[flags[2]], params, INDEXED)
            if indexed and indexed[0]:
                connector = self._scope.connector

                async def page(conn: psycopg.AsyncConnection[Any]) -> list[HybridMatch]:
                    approximate = _HYBRIDS[(*flags, False, _has(connector, HALFVEC_FROM))]
                    cur = conn.cursor(row_factory=HYBRID, binary=True)
                    await cur.execute(connector.sql(approximate), params, prepare=False)
                    return await cur.fetchall()

                rows: list[HybridMatch] = await self._scope.snapshot(self._index_scan(page, params))
                if len(rows) == limit:
                    return rows
        return await self._scope.search(exact, params, HYBRID)

    def _search_params(self, user_id: str, limit: int, query: Any) -> dict[str, Any]:
        documents = f'"{self._scope.connector.schema}".documents'
        return {
            "user_id": user_id,
            "query": query,
            "limit": limit,
            "exact_up_to": EXACT_UP_TO,
            "index_share": INDEX_SHARE,
            "documents": documents,
        }

    def _index_scan(self, work: Work, params: dict[str, Any]) -> Work:
        """`work(conn)` as the caller (row-level security) with the index preferred to a sort
        and, on pgvector 0.8, iterative scans (`relaxed_order`, at most `SCAN_TUPLES`); the
        settings are put back afterwards inside a transaction of the caller's."""
        connector = self._scope.connector
        restore = isinstance(self._scope, TransactionScope)

        async def scan(conn: psycopg.AsyncConnection[Any]) -> Any:
            if connector.settings.row_level_security:
                await set_rls_identity(conn, params)
            wanted = dict(_INDEX_FIRST)
            if _has(connector, ITERATIVE_FROM):
                wanted |= _ITERATIVE
            before = await _set_local(conn, wanted)
            result = await work(conn)
            if restore:
                await _set_local(conn, before)
            return result

        return scan


_INDEX_FIRST = {"enable_sort": "off"}
"""The planner prices a vector distance like an addition, so it sorts even an owner of most
rows instead of walking the index (29 ms against 2.2 ms measured): the index path is taken
only where the index is right, so sorts are discouraged there."""
_ITERATIVE = {"hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": str(SCAN_TUPLES)}
_DEFAULTS = {"hnsw.iterative_scan": "off", "hnsw.max_scan_tuples": "20000"}  # (not yet loaded)


async def _set_local(conn: psycopg.AsyncConnection[Any], wanted: dict[str, str]) -> dict[str, str]:
    """Set each of `wanted` until the transaction ends, in one trip; return the previous values."""
    names = list(wanted)
    each = "current_setting(%s, true), set_config(%s, %s, true)"
    args = [value for name in names for value in (name, name, wanted[name])]
    cur = await conn.execute(f"SELECT {', '.join([each] * len(names))}", args, prepare=False)
    row = await cur.fetchone()
    assert row is not None
    return {name: row[2 * i] or _DEFAULTS.get(name, "") for i, name in enumerate(names)}


def _has(connector: Connector, version: tuple[int, int]) -> bool:
    """True when the server's pgvector is `version` or later (known once connected)."""
    return (connector.pgvector_version or (0,)) >= version


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
