"""Observable instruments report the pool, the cache and its listener of each Database."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from psycopg.conninfo import conninfo_to_dict

from cache.helpers import eventually
from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import UserUpsert
from darasa_db.telemetry import instrument
from replica_fixtures import OpenDatabase, Replicated


def points(
    reader: InMemoryMetricReader, db: Database
) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Metric name -> [(attributes, value)] of `db`'s pool."""
    pool_name = db._connector._pool.name  # type: ignore[union-attr]
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "darasa_db"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    if attrs.get("db.client.connection.pool.name") == pool_name:
                        found.setdefault(metric.name, []).append((attrs, point.value))
    return found


async def test_pool_cache_and_listener_are_measured(
    db: Database, metric_reader: InMemoryMetricReader
):
    user = await db.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="Ada"))
    assert await db.users.get(user.id) == user  # a miss
    assert await db.users.get(user.id) == user  # a hit
    assert await db.users.get(user.id) == user  # a hit
    stats = db.cache.stats  # type: ignore[union-attr]

    found = points(metric_reader, db)

    def value(name: str, **where: str) -> Any:
        matching = [v for attrs, v in found[name] if where.items() <= attrs.items()]
        assert len(matching) == 1, (name, found.get(name))
        return matching[0]

    assert value("darasa.cache.hits") == stats.hits >= 2
    assert value("darasa.cache.misses") == stats.misses >= 1
    assert value("darasa.cache.invalidations") == stats.invalidations >= 1  # (the upsert)
    assert value("darasa.cache.size") == stats.size >= 1
    assert value("darasa.cache.listener.ready") == 1
    idle = value("db.client.connection.count", **{"db.client.connection.state": "idle"})
    used = value("db.client.connection.count", **{"db.client.connection.state": "used"})
    pool = db._connector._pool.get_stats()  # type: ignore[union-attr]
    assert (idle, used) == (pool["pool_available"], pool["pool_size"] - pool["pool_available"])
    assert idle + used >= 1
    assert value("db.client.connection.max") == pool["pool_max"]
    assert value("db.client.connection.pending_requests") == 0
    namespaces = {attrs["db.namespace"] for series in found.values() for attrs, _ in series}
    assert namespaces == {f"{conninfo_to_dict(db.settings.conninfo)['dbname']}.{db.schema}"}


async def test_connections_in_use_and_waiting_callers_are_counted(
    db: Database, metric_reader: InMemoryMetricReader
):
    pool = await db.pool()

    async def one_more() -> None:
        async with db.connection():
            pass

    async with AsyncExitStack() as stack:
        for _ in range(pool.max_size):
            await stack.enter_async_context(db.connection())
        waiting = asyncio.create_task(one_more())
        await eventually(lambda: pool.get_stats().get("requests_waiting", 0) == 1)
        found = points(metric_reader, db)
    await waiting  # a connection went back: the waiting caller got it

    by_state = {a["db.client.connection.state"]: v for a, v in found["db.client.connection.count"]}
    assert by_state == {"idle": 0, "used": pool.max_size}
    assert [v for _, v in found["db.client.connection.pending_requests"]] == [1]
    after = points(metric_reader, db)
    assert [v for _, v in after["db.client.connection.pending_requests"]] == [0]


async def test_a_closed_database_stops_reporting(db: Database, metric_reader: InMemoryMetricReader):
    await db.users.get("user_nobody")
    assert points(metric_reader, db)
    pool_name = db._connector._pool.name  # type: ignore[union-attr]
    await db.close()

    data = metric_reader.get_metrics_data()
    names = [
        dict(point.attributes or {}).get("db.client.connection.pool.name")
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    assert pool_name not in names


async def test_replica_pools_are_measured_beside_the_primary(
    replicated: Replicated, open_db: OpenDatabase, metric_reader: InMemoryMetricReader
):
    db = open_db()
    instrument(db, meter_provider=MeterProvider(metric_readers=[metric_reader]))
    await db.users.get("user_nobody")  # a Database that wrote nothing reads the replica
    await db.pool()

    data = metric_reader.get_metrics_data()
    assert data is not None
    counts = [
        dict(point.attributes or {})
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "db.client.connection.count"
        for point in metric.data.data_points
    ]
    ports = {a["server.port"] for a in counts}
    assert ports == {
        DatabaseSettings(url=replicated.primary_url).port,
        DatabaseSettings(url=replicated.replica_url).port,
    }
    assert len({a["db.client.connection.pool.name"] for a in counts}) == 2
