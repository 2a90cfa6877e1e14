"""Retries where they are safe: read-only calls retry transient failures, writes never retry.

Transient failures are injected by the real server: a `flaky` schema holds views over darasa's
tables whose condition calls `flaky.gate()`, which raises a chosen SQLSTATE for the first N
calls and counts every call in a sequence (sequences ignore rollbacks). A `Database` with
`schema_name="flaky"` runs the repositories' own statements against those views.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from darasa_db import Database, DatabaseUnavailableError
from darasa_db.errors import DarasaDBError, QueryTimeoutError
from darasa_db.schemas import JobInfoCreate, UserUpsert
from reliability.helpers import fault_settings, raw, terminate

pytestmark = pytest.mark.reliability

FLAKY_SCHEMA = """
DROP SCHEMA IF EXISTS flaky CASCADE;
CREATE SCHEMA flaky;
CREATE SEQUENCE flaky.calls;
CREATE TABLE flaky.plan (failures int NOT NULL, sqlstate text NOT NULL);
INSERT INTO flaky.plan VALUES (0, '40001');
CREATE FUNCTION flaky.gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    call bigint := nextval('flaky.calls');
    plan flaky.plan;
BEGIN
    SELECT * INTO plan FROM flaky.plan;
    IF call <= plan.failures THEN
        RAISE EXCEPTION 'injected failure % of %', call, plan.failures
            USING ERRCODE = plan.sqlstate;
    END IF;
    RETURN true;
END $$;
CREATE VIEW flaky.users AS SELECT * FROM darasa.users WHERE flaky.gate();
CREATE VIEW flaky.job_info AS SELECT * FROM darasa.job_info WHERE flaky.gate()
    WITH CHECK OPTION;
"""


@pytest.fixture(scope="module")
async def flaky_url(fault_database_url: str) -> str:
    """The fault database with the `flaky` schema and one user, `retry-user`."""
    await raw(fault_database_url, FLAKY_SCHEMA)
    async with Database(fault_settings(fault_database_url), cache=None) as db:
        await db.users.upsert(UserUpsert(id="retry-user", email="r@x.co", name="R"))
    return fault_database_url


async def arm(url: str, failures: int, sqlstate: str) -> None:
    """Make the next `failures` gate calls raise `sqlstate`; reset the call count."""
    await raw(url, "UPDATE flaky.plan SET failures = %s, sqlstate = %s", failures, sqlstate)
    await raw(url, "ALTER SEQUENCE flaky.calls RESTART")


async def gate_calls(url: str) -> int:
    """How many times statements called the gate since `arm`."""
    rows = await raw(url, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM flaky.calls")
    return int(rows[0][0])


@pytest.fixture
async def flaky_db(flaky_url: str) -> AsyncIterator[Database]:
    """A `Database` whose repositories read and write through the flaky views."""
    async with Database(fault_settings(flaky_url, schema_name="flaky"), cache=None) as db:
        yield db


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization", "deadlock"])
async def test_read_is_retried_after_transient_failures(flaky_db, flaky_url, sqlstate):
    await arm(flaky_url, failures=2, sqlstate=sqlstate)  # = read_retries, the default

    user = await flaky_db.users.get("retry-user")

    assert user is not None
    assert user.id == "retry-user"
    assert await gate_calls(flaky_url) == 3


@pytest.mark.parametrize("retries", [0, 2])
async def test_read_retries_are_bounded_by_the_setting(flaky_url, retries):
    await arm(flaky_url, failures=100, sqlstate="40001")
    settings = fault_settings(flaky_url, schema_name="flaky", read_retries=retries)

    async with Database(settings, cache=None) as db:
        with pytest.raises(DarasaDBError, match="injected failure"):
            await db.users.get("retry-user")

    assert await gate_calls(flaky_url) == 1 + retries


@pytest.mark.parametrize(
    ("sqlstate", "error"),
    [("57014", QueryTimeoutError), ("22012", DarasaDBError)],
    ids=["query-cancelled", "division-by-zero"],
)
async def test_read_is_not_retried_after_a_lasting_failure(flaky_db, flaky_url, sqlstate, error):
    await arm(flaky_url, failures=100, sqlstate=sqlstate)

    with pytest.raises(error, match="injected failure"):
        await flaky_db.users.get("retry-user")

    assert await gate_calls(flaky_url) == 1


async def test_write_is_never_retried_even_after_a_transient_failure(flaky_db, flaky_url):
    await arm(flaky_url, failures=1, sqlstate="40001")
    data = JobInfoCreate(name="once", experience_level="junior", description="d")

    with pytest.raises(DarasaDBError, match=r"safe to retry.*injected failure") as caught:
        await flaky_db.job_infos.create("retry-user", data)

    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert await gate_calls(flaky_url) == 1
    assert await raw(flaky_url, "SELECT 1 FROM darasa.job_info WHERE name = 'once'") == []
    created = await flaky_db.job_infos.create("retry-user", data)  # the caller may try again
    rows = await raw(flaky_url, "SELECT id FROM darasa.job_info WHERE name = 'once'")
    assert rows == [(created.id,)]


async def backend_of_the_only_connection(db: Database) -> int:
    async with db.connection() as conn:
        return conn.info.backend_pid


@pytest.mark.embedded_smoke
async def test_read_is_retried_when_its_pooled_connection_was_killed(fault_database_url):
    url = fault_database_url
    for retries, survives in [(2, True), (0, False)]:
        # One connection, never pinged: the dead one is handed out and the read fails on it.
        settings = fault_settings(
            url, pool_size=1, max_overflow=0, pre_ping_idle=None, read_retries=retries
        )
        async with Database(settings, cache=None) as db:
            await db.users.upsert(UserUpsert(id="killed-read", email="kr@x.co", name="K"))
            await terminate(url, await backend_of_the_only_connection(db))
            if survives:
                user = await db.users.get("killed-read")
                assert user is not None
                assert user.name == "K"
            else:
                with pytest.raises(DatabaseUnavailableError):
                    await db.users.get("killed-read")


async def test_a_connection_idle_past_pre_ping_idle_is_pinged_before_use(fault_database_url):
    """A connection back in the pool for longer than `pre_ping_idle` is pinged on checkout, and
    a dead one replaced, so even a write (never retried) succeeds; one returned more recently is
    handed out as it is."""
    url = fault_database_url
    data = JobInfoCreate(name="pinged", experience_level="senior", description="d")
    for idle, survives in [(0.2, True), (60.0, False)]:
        settings = fault_settings(url, pool_size=1, max_overflow=0, pre_ping_idle=idle)
        async with Database(settings, cache=None) as db:
            await db.users.upsert(UserUpsert(id="pinged", email="pi@x.co", name="P"))
            await terminate(url, await backend_of_the_only_connection(db))
            await asyncio.sleep(0.3)
            if survives:
                assert (await db.job_infos.create("pinged", data)).name == "pinged"
            else:
                with pytest.raises(DatabaseUnavailableError):
                    await db.job_infos.create("pinged", data)


async def test_write_on_a_killed_connection_is_unavailable_and_not_repeated(fault_database_url):
    url = fault_database_url
    settings = fault_settings(url, pool_size=1, max_overflow=0, pre_ping_idle=None)
    async with Database(settings, cache=None) as db:
        await db.users.upsert(UserUpsert(id="killed-write", email="kw@x.co", name="K"))
        await terminate(url, await backend_of_the_only_connection(db))
        data = JobInfoCreate(name="lost", experience_level="senior", description="d")

        with pytest.raises(DatabaseUnavailableError):
            await db.job_infos.create("killed-write", data)

        assert await db.job_infos.list_for_user("killed-write") == []  # not run again
        created = await db.job_infos.create("killed-write", data)
        assert await db.job_infos.list_for_user("killed-write") == [created]
