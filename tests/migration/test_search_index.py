"""`darasa_db.search_index`: the embeddings index dropped for a bulk load and built again exactly
as the migrations made it, so that later migrations and searches find what they expect."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from _migration_helpers import rows
from sqlalchemy import create_engine

from darasa_db import Database, DatabaseSettings, migrate, search_index
from darasa_db.cli import main
from darasa_db.errors import ConfigurationError, MigrationError
from darasa_db.schemas import DocumentCreate, UserUpsert

SETTINGS = ("maintenance_work_mem", "statement_timeout")
INDEX_DEF = (
    "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ix_documents_embedding_hnsw' "
    "AND c.relnamespace = 'darasa'::regnamespace"
)


def _index(url: str) -> list[tuple[str, bool]]:
    return [(str(d), bool(v)) for d, v in rows(url, INDEX_DEF)]


def _has_halfvec(url: str) -> bool:
    ((version,),) = rows(url, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    return tuple(int(p) for p in str(version).split(".")[:2]) >= (0, 7)


async def _load_and_search(url: str, count: int) -> list[str]:
    """`count` documents of one user, then the titles of a search's 5 nearest."""
    vectors = np.random.default_rng(7).standard_normal((count, 1536)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    db = Database(DatabaseSettings(url=url), cache=None)
    try:
        await db.users.upsert(UserUpsert(id="loader", email="loader@example.com", name="L"))
        documents = [
            DocumentCreate(title=f"d{i}", content="x", embedding=v.tolist())
            for i, v in enumerate(vectors)
        ]
        assert await db.documents.create_many("loader", documents) == count
        found = await db.documents.similarity_search(vectors[0].tolist(), user_id="loader", limit=5)
        return [m.document.title for m in found]
    finally:
        await db.close()


def test_drop_load_build_gives_back_the_index_the_migrations_made(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url)
    made = _index(url)
    assert len(made) == 1
    assert made[0][1] is True
    assert search_index.status(url) == "valid"
    assert search_index.build(url) is False  # nothing to do
    assert _index(url) == made

    assert search_index.drop(url) is True
    assert search_index.status(url) == "missing"
    assert _index(url) == []
    assert search_index.drop(url) is False
    titles = asyncio.run(_load_and_search(url, 300))
    assert titles[0] == "d0"  # correct without the index: an exact scan
    assert len(titles) == 5

    assert search_index.build(url, maintenance_work_mem="64MB") is True

    assert _index(url) == made  # the same definition, under the same name
    assert search_index.status(url) == "valid"
    assert migrate.check(url) is True
    ((analyzed,),) = rows(
        url,
        "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL FROM pg_stat_all_tables "
        "WHERE schemaname = 'darasa' AND relname = 'documents'",
    )
    assert analyzed is True
    # later migrations find the index where they expect it: down past 0004 and up again
    assert "0004" in migrate.downgrade(url, "0003")
    assert "0004" in migrate.upgrade(url)
    assert _index(url) == made


def test_build_concurrently(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url)
    made = _index(url)
    search_index.drop(url)

    assert search_index.build(url, concurrently=True) is True

    assert _index(url) == made


def test_an_invalid_index_left_by_a_failed_build_is_built_again(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url)
    made = _index(url)
    rows(
        url,
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
        "'darasa.ix_documents_embedding_hnsw'::regclass",
    )
    assert search_index.status(url) == "invalid"

    assert search_index.build(url) is True

    assert _index(url) == made
    assert search_index.status(url) == "valid"


def test_the_other_precisions_index_is_outdated_and_replaced(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url)
    made = _index(url)
    rows(url, "DROP INDEX darasa.ix_documents_embedding_hnsw")
    rows(
        url,
        "CREATE INDEX ix_documents_embedding_hnsw ON darasa.documents "
        "USING hnsw (embedding vector_cosine_ops)",
    )
    if not _has_halfvec(url):  # pgvector 0.6: the full-precision index is the right one
        assert search_index.status(url) == "valid"
        assert _index(url) == made
        return
    assert search_index.status(url) == "outdated"

    assert search_index.build(url) is True

    assert _index(url) == made


def test_a_schema_not_at_head_is_refused_and_left_alone(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, "0005")
    before = _index(url)

    for call in (search_index.status, search_index.drop, search_index.build):
        with pytest.raises(MigrationError, match=r"run darasa_db\.migrate\.upgrade first"):
            call(url)

    assert _index(url) == before


def test_a_bad_maintenance_work_mem_names_the_setting_and_builds_nothing(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url)
    search_index.drop(url)

    with pytest.raises(ConfigurationError, match="maintenance_work_mem 'lots'"):
        search_index.build(url, maintenance_work_mem="lots")

    assert search_index.status(url) == "missing"


def test_the_command(empty_database_url, capsys, monkeypatch):
    url = empty_database_url
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate.upgrade(url)

    assert main(["search-index", "status", "--url", url]) == 0
    assert capsys.readouterr().out.endswith(": valid\n")
    assert main(["search-index", "drop", "--url", url]) == 0
    assert capsys.readouterr().out.endswith(": dropped\n")
    assert main(["search-index", "status", "--url", url]) == 1
    assert capsys.readouterr().out.endswith(": missing\n")
    assert main(["search-index", "build", "--url", url, "--maintenance-work-mem", "64MB"]) == 0
    assert capsys.readouterr().out.endswith(": built\n")
    assert search_index.status(url) == "valid"


def test_a_hosts_engine_gets_its_connection_back_as_it_lent_it(empty_database_url):
    """`build` on the host's own Engine (a pool of one): the session settings it needed for
    the build do not stay on the connection the host's application uses next."""
    url = empty_database_url
    migrate.upgrade(url)
    search_index.drop(url)
    engine = create_engine(DatabaseSettings(url=url).sqlalchemy_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            before = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in SETTINGS]

        assert search_index.build(engine, maintenance_work_mem="77MB") is True

        with engine.connect() as conn:
            after = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in SETTINGS]
            locks = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            ).scalar()
        assert after == before
        assert locks == 0
    finally:
        engine.dispose()
