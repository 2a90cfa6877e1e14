"""Many processes migrating the same database at the same moment migrate it once."""

from __future__ import annotations

import multiprocessing

from _migration_helpers import TABLES, tables_in, upgrade_when_all_ready

from darasa_db import migrate

PROCESSES = 8


def test_eight_processes_upgrading_at_once_all_succeed_and_apply_each_revision_once(
    empty_database_url,
):
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    workers = [
        spawn.Process(target=upgrade_when_all_ready, args=(empty_database_url, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)

    assert [w.exitcode for w in workers] == [0] * PROCESSES
    assert [status for status, _ in outcomes] == ["ok"] * PROCESSES, outcomes
    applied = [revisions for _, revisions in outcomes]
    every = [r.revision for r in migrate.history()]
    assert sorted(applied, key=len) == [[]] * (PROCESSES - 1) + [every]
    assert migrate.check(empty_database_url) is True
    assert tables_in(empty_database_url, "darasa") == TABLES | {migrate.VERSION_TABLE}
