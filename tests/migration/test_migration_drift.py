"""Models and migrations never drift: an autogenerate comparison finds no difference."""

from __future__ import annotations

import pytest
from _migration_helpers import autogenerate_diff, rows

from darasa_db import migrate


def _kinds(diffs):
    """(operation, object name) for each difference, index and column changes flattened."""
    found = set()
    for diff in diffs:
        if isinstance(diff, list):  # column modifications come grouped
            found |= {(d[0], f"{d[2]}.{d[3]}") for d in diff}
        elif diff[0] in ("add_index", "remove_index"):
            found.add((diff[0], diff[1].name))
        elif diff[0] in ("add_column", "remove_column"):
            found.add((diff[0], f"{diff[2]}.{diff[3].name}"))
        else:
            found.add((diff[0], str(diff[1])))
    return found


@pytest.mark.embedded_smoke
def test_migrated_database_matches_the_models(darasa_database_url):
    assert autogenerate_diff(darasa_database_url) == []


def test_host_tables_outside_our_schema_are_not_compared(darasa_database_url):
    rows(darasa_database_url, "CREATE TABLE public.users (id serial PRIMARY KEY, login text)")
    rows(darasa_database_url, "CREATE TABLE public.invoices (id serial PRIMARY KEY)")
    assert autogenerate_diff(darasa_database_url) == []


def test_comparison_reports_columns_and_indexes_changed_by_hand(darasa_database_url):
    url = darasa_database_url
    rows(url, "ALTER TABLE darasa.users ADD COLUMN nickname text")
    rows(url, "CREATE INDEX ix_drift_documents_title ON darasa.documents (title)")
    rows(url, "DROP INDEX darasa.ix_conversations_updated_at")
    rows(url, "ALTER TABLE darasa.interviews ALTER COLUMN duration TYPE varchar(20)")

    found = _kinds(autogenerate_diff(url))

    assert ("remove_column", "users.nickname") in found
    assert ("remove_index", "ix_drift_documents_title") in found
    assert ("add_index", "ix_conversations_updated_at") in found
    assert ("modify_type", "interviews.duration") in found
    assert len(found) == 4


def _embedding_index(url: str) -> str:
    [(definition,)] = rows(
        url,
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'darasa' "
        "AND indexname = 'ix_documents_embedding_hnsw'",
    )
    return str(definition)


def _has_halfvec(url: str) -> bool:
    [(version,)] = rows(url, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    return tuple(int(p) for p in str(version).split(".")[:2]) >= (0, 7)


FULL = "USING hnsw (embedding vector_cosine_ops)"
HALF = "USING hnsw (((embedding)::halfvec(1536)) halfvec_cosine_ops)"


def test_the_embedding_index_is_half_precision_where_pgvector_has_halfvec(darasa_database_url):
    # The autogenerate comparison does not look inside index expressions: this check does.
    # The models declare the full-precision index; migration 0004 swaps it on pgvector 0.7+.
    expected = HALF if _has_halfvec(darasa_database_url) else FULL
    assert expected in _embedding_index(darasa_database_url)
    [(kind,)] = rows(
        darasa_database_url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'darasa.documents'::regclass AND attname = 'embedding'",
    )
    assert kind == "vector(1536)"  # storage keeps full precision


def test_downgrading_0004_restores_the_full_precision_index(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, "0004")
    expected = HALF if _has_halfvec(url) else FULL
    assert expected in _embedding_index(url)

    migrate.downgrade(url, "0003")
    assert FULL in _embedding_index(url)
    migrate.upgrade(url, "0004")
    assert expected in _embedding_index(url)
