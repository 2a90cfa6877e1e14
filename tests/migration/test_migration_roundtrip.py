"""Upgrade, downgrade to base and upgrade again on an empty database; history and status."""

from __future__ import annotations

import itertools

import pytest
from _migration_helpers import TABLES, our_objects, rows, tables_in

from darasa_db import migrate

NOTHING = {"schema": [], "relations": [], "types": [], "functions": [], "policies": []}


@pytest.mark.embedded_smoke
def test_upgrade_then_downgrade_to_base_leaves_nothing_and_upgrades_again(empty_database_url):
    url = empty_database_url
    every = [r.revision for r in migrate.history()]
    assert migrate.current(url) is None
    assert migrate.check(url) is False

    assert migrate.upgrade(url) == every
    assert migrate.current(url) == migrate.head()
    assert migrate.check(url) is True
    assert tables_in(url, "darasa") == TABLES | {migrate.VERSION_TABLE}

    assert migrate.downgrade(url, "base") == every[::-1]
    assert our_objects(url) == NOTHING
    assert migrate.current(url) is None
    assert migrate.check(url) is False
    # The extension is shared with the host, so it may stay; nothing else of ours does.
    assert rows(url, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]

    assert migrate.upgrade(url) == every
    assert migrate.check(url) is True
    assert tables_in(url, "darasa") == TABLES | {migrate.VERSION_TABLE}


def test_every_revision_upgrades_and_downgrades_one_step_at_a_time(empty_database_url):
    url = empty_database_url
    revisions = [r.revision for r in migrate.history()]
    for revision in revisions:
        assert migrate.upgrade(url, revision) == [revision]
        assert migrate.current(url) == revision
    for below, revision in reversed(list(zip([None, *revisions[:-1]], revisions, strict=True))):
        assert migrate.downgrade(url, "-1") == [revision]
        assert migrate.current(url) == below
    assert our_objects(url) == NOTHING


def test_upgrade_at_head_applies_nothing(darasa_database_url):
    assert migrate.check(darasa_database_url) is True
    assert migrate.upgrade(darasa_database_url) == []
    assert migrate.current(darasa_database_url) == migrate.head()


def test_upgrade_logs_each_revision_applied(empty_database_url, caplog):
    caplog.set_level("INFO", logger="darasa_db.migrate")
    migrate.upgrade(empty_database_url)
    applied = [r.getMessage() for r in caplog.records if r.name == "darasa_db.migrate"]
    revisions = migrate.history()
    assert len(applied) == len(revisions)
    for message, revision in zip(applied, revisions, strict=True):
        assert message.startswith(f"applied revision {revision.revision} in schema 'darasa'")


def test_history_lists_the_bundled_revisions_oldest_first():
    revisions = migrate.history()
    assert revisions[0].revision == "0001"
    assert revisions[0].down_revision is None
    for older, newer in itertools.pairwise(revisions):
        assert newer.down_revision == older.revision
    assert revisions[-1].revision == migrate.head()
    assert all(r.doc for r in revisions)


def test_script_location_is_the_checkouts_migrations_directory():
    location = migrate.script_location()
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()
