"""Migration 0005: questions and interviews carry their job info's `user_id`.

Rows written before it are backfilled, the keys keep a child with its job info's owner, the
previous release's inserts keep working, and the downgrade gives back 0004's schema.
"""

from __future__ import annotations

import psycopg
import pytest
from _migration_helpers import rows

from darasa_db import migrate, rls

BEFORE, AFTER = "0004", "0005"
CHILDREN = ("questions", "interviews")


def seed(url: str) -> dict[str, str]:
    """At 0004: two users, each with a job info holding a question and an interview, written
    with the SQL of the release before 0005. Returns each child's id → its owner."""
    owners = {}
    for user in ("alice", "bob"):
        rows(
            url,
            "INSERT INTO darasa.users (id, email, name, email_key) VALUES (%s, %s, %s, %s)",
            user,
            f"{user}@example.com",
            user,
            f"{user}@example.com",
        )
        ((job,),) = rows(
            url,
            "INSERT INTO darasa.job_info (user_id, name, experience_level, description) "
            "VALUES (%s, 'job', 'senior', 'd') RETURNING id",
            user,
        )
        ((question,),) = rows(
            url,
            "INSERT INTO darasa.questions (job_info_id, text, difficulty) "
            "VALUES (%s, 'why?', 'hard') RETURNING id",
            job,
        )
        ((interview,),) = rows(
            url,
            "INSERT INTO darasa.interviews (job_info_id, duration) "
            "VALUES (%s, '15 minutes') RETURNING id",
            job,
        )
        owners[str(question)] = owners[str(interview)] = user
    return owners


@pytest.fixture
def migrated_seed(darasa_database_url: str) -> str:
    """A database seeded at 0004, then migrated to head."""
    migrate.downgrade(darasa_database_url, BEFORE)
    seed(darasa_database_url)
    migrate.upgrade(darasa_database_url)
    return darasa_database_url


def children(url: str) -> dict[str, tuple[str, str]]:
    """Every child row by id: (its user_id, its job info's owner)."""
    found = {}
    for table in CHILDREN:
        for id, user_id, owner in rows(
            url,
            f"SELECT c.id, c.user_id, j.user_id FROM darasa.{table} c "
            "JOIN darasa.job_info j ON j.id = c.job_info_id",
        ):
            found[str(id)] = (user_id, owner)
    return found


def stamps(url: str) -> dict[str, object]:
    """Every child row's updated_at, by id."""
    return {
        str(id): updated
        for table in CHILDREN
        for id, updated in rows(url, f"SELECT id, updated_at FROM darasa.{table}")
    }


def constraints(url: str, table: str) -> dict[str, str]:
    """Constraint name → definition, for `table` of the schema."""
    return dict(
        rows(
            url,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass ORDER BY conname",
            f"darasa.{table}",
        )
    )


def policy(url: str, table: str) -> str:
    ((using,),) = rows(
        url,
        "SELECT qual FROM pg_policies WHERE schemaname = 'darasa' AND tablename = %s "
        "AND policyname = 'darasa_owner'",
        table,
    )
    return str(using)


def test_rows_written_before_the_migration_get_their_job_infos_user_id(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    owners = seed(url)
    updated = stamps(url)

    assert migrate.upgrade(url, AFTER) == [AFTER]

    after = children(url)
    assert {id: user_id for id, (user_id, _) in after.items()} == owners
    assert all(user_id == owner for user_id, owner in after.values())
    assert stamps(url) == updated  # the backfill is not an edit: updated_at stays as it was
    for table in CHILDREN:
        assert rows(url, f"SELECT count(*) FROM darasa.{table} WHERE user_id IS NULL") == [(0,)]
        ((nullable,),) = rows(
            url,
            "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'darasa' "
            "AND table_name = %s AND column_name = 'user_id'",
            table,
        )
        assert nullable == "NO"


def test_the_backfill_runs_under_forced_row_level_security(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    owners = seed(url)
    rls.enable(url, force=True)  # the policies now apply to the migrating owner too

    migrate.upgrade(url)

    rls.disable(url)
    assert {id: user_id for id, (user_id, _) in children(url).items()} == owners
    forced = rows(
        url,
        "SELECT relname FROM pg_class WHERE relforcerowsecurity "
        "AND relnamespace = 'darasa'::regnamespace",
    )
    assert forced == []  # rls.disable lifted the force that the migration had put back


def test_the_migration_puts_back_forced_row_level_security(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    rls.enable(url, force=True)
    migrate.upgrade(url)
    forced = {
        r[0]
        for r in rows(
            url,
            "SELECT relname FROM pg_class WHERE relforcerowsecurity AND relkind = 'r' "
            "AND relnamespace = 'darasa'::regnamespace",
        )
    }
    assert forced == set(rls.OWNED_TABLES)


def test_a_child_cannot_name_another_users_job_info(migrated_seed):
    url = migrated_seed
    ((bobs_job,),) = rows(url, "SELECT id FROM darasa.job_info WHERE user_id = 'bob'")
    for table, values in (("questions", "'q', 'easy'"), ("interviews", "'5 minutes'")):
        columns = "text, difficulty" if table == "questions" else "duration"
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            rows(
                url,
                f"INSERT INTO darasa.{table} (job_info_id, user_id, {columns}) "
                f"VALUES (%s, 'alice', {values})",
                bobs_job,
            )
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            rows(url, f"UPDATE darasa.{table} SET user_id = 'alice' WHERE user_id = 'bob'")


def test_the_previous_releases_inserts_still_work_and_get_the_owner(migrated_seed):
    """Rolling deploys: a process of the release before 0005 inserts without `user_id`."""
    url = migrated_seed
    ((job,),) = rows(url, "SELECT id FROM darasa.job_info WHERE user_id = 'bob'")
    ((owner,),) = rows(
        url,
        "INSERT INTO darasa.questions (job_info_id, text, difficulty) "
        "VALUES (%s, 'old release', 'easy') RETURNING user_id",
        job,
    )
    assert owner == "bob"
    with pytest.raises(psycopg.errors.NotNullViolation):  # a missing job info: refused
        rows(
            url,
            "INSERT INTO darasa.interviews (job_info_id, duration) "
            "VALUES (gen_random_uuid(), '5 minutes')",
        )


def test_deleting_a_user_or_a_job_info_still_cascades(migrated_seed):
    url = migrated_seed
    rows(url, "DELETE FROM darasa.job_info WHERE user_id = 'alice'")
    rows(url, "DELETE FROM darasa.users WHERE id = 'bob'")
    for table in CHILDREN:
        assert rows(url, f"SELECT count(*) FROM darasa.{table}") == [(0,)]


def test_downgrade_gives_back_the_previous_schema_and_keeps_the_rows(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    owners = seed(url)
    before = {table: constraints(url, table) for table in ("job_info", *CHILDREN)}
    policies = {table: policy(url, table) for table in CHILDREN}
    migrate.upgrade(url, AFTER)
    assert "user_id" in policy(url, "questions")
    assert "job_info" not in policy(url, "questions")

    assert migrate.downgrade(url, BEFORE) == [AFTER]

    assert {table: constraints(url, table) for table in ("job_info", *CHILDREN)} == before
    assert {table: policy(url, table) for table in CHILDREN} == policies
    for table in CHILDREN:
        columns = rows(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'darasa' AND table_name = %s AND column_name = 'user_id'",
            table,
        )
        assert columns == []
        assert rows(url, f"SELECT count(*) FROM darasa.{table}") == [(2,)]
    assert (
        rows(url, "SELECT proname FROM pg_proc WHERE proname = 'fill_user_id_from_job_info'") == []
    )
    # 0004's single-column key is back: a child names a job info by its id only
    ((job,),) = rows(url, "SELECT id FROM darasa.job_info WHERE user_id = 'alice'")
    rows(
        url,
        "INSERT INTO darasa.questions (job_info_id, text, difficulty) VALUES (%s, 'q', 'easy')",
        job,
    )

    assert migrate.upgrade(url, AFTER) == [AFTER]
    backfilled = {id: user_id for id, (user_id, _) in children(url).items()}
    assert {id: backfilled[id] for id in owners} == owners
    assert sorted(backfilled.values()).count("alice") == 3
