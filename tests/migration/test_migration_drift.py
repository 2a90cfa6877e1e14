"""Models and migrations never drift: an autogenerate comparison finds no difference."""

from __future__ import annotations

import pytest
from _migration_helpers import autogenerate_diff, rows


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
