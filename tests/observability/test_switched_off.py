"""Without OpenTelemetry, or before it is configured, a Database is exactly the plain one; once
configured, a Database built afterwards is traced and measured through the global providers.
Each case runs in a fresh interpreter, since the global providers can be set only once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

WORKLOAD = """
import asyncio, json, os, sys
from darasa_db import Database, DatabaseSettings
from darasa_db.repositories._scope import PoolScope
from darasa_db.repositories.users import SqlUserRepository
from darasa_db.schemas import UserUpsert

async def use(db, before_close=lambda: None):
    user = await db.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="Ada"))
    await db.pool()
    while not db.cache_ready:
        await asyncio.sleep(0.01)
    same = [await db.users.get(user.id) == user for _ in range(2)]
    async with db.transaction() as tx:
        tx_type = type(tx.users)
        same.append(await tx.users.get(user.id) == user)
    collected = before_close()
    await db.close()
    return collected or {
        "same": same,
        "plain": type(db.users) is SqlUserRepository and tx_type is SqlUserRepository,
        "hook": PoolScope.cache_outcome is None and "cache_outcome" not in vars(db.users._scope),
    }

def database():
    return Database(DatabaseSettings(url=os.environ["URL"], test_mode=True))
"""


def run(code: str, url: str) -> dict[str, Any]:
    script = WORKLOAD + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "URL": url},
        cwd=os.path.dirname(__file__),
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_opentelemetry_the_library_works_unchanged(darasa_database_url: str):
    result = run(
        """
        sys.modules["opentelemetry"] = None  # not installed: every import of it fails
        import darasa_db.telemetry
        out = asyncio.run(use(database()))
        out["loaded"] = [m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v]
        print(json.dumps(out))
        """,
        darasa_database_url,
    )

    assert result == {"same": [True, True, True], "plain": True, "hook": True, "loaded": []}


def test_installed_but_not_configured_is_the_plain_library(darasa_database_url: str):
    result = run(
        """
        import opentelemetry.trace, opentelemetry.metrics  # imported, no provider set
        print(json.dumps(asyncio.run(use(database()))))
        """,
        darasa_database_url,
    )

    assert result == {"same": [True, True, True], "plain": True, "hook": True}


def test_a_database_built_after_the_global_providers_are_set_is_observed(
    darasa_database_url: str,
):
    result = run(
        """
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        CACHE = "darasa.cache"
        before = database()  # built before the providers: stays plain, transactions too
        spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

        async def main():
            plain = await use(before)
            observed = database()
            traced = type(observed.users).__mro__[1] is SqlUserRepository
            names = await use(observed, lambda: [
                m.name
                for r in reader.get_metrics_data().resource_metrics
                for s in r.scope_metrics
                for m in s.metrics
            ])
            return plain, traced, names

        plain, traced, metric_names = asyncio.run(main())
        print(json.dumps({
            "plain": plain,
            "traced": traced,
            "spans": [(s.name, s.attributes.get(CACHE)) for s in spans.get_finished_spans()],
            "metrics": metric_names,
        }))
        """,
        darasa_database_url,
    )

    assert result["plain"] == {"same": [True, True, True], "plain": True, "hook": True}
    assert result["traced"] is True
    assert result["spans"] == [
        ["users.upsert", None],
        ["users.get", "miss"],
        ["users.get", "hit"],
        ["users.get", "bypass"],
    ]
    assert {
        "darasa.cache.hits",
        "darasa.cache.misses",
        "darasa.cache.invalidations",
        "darasa.cache.listener.ready",
        "db.client.connection.count",
        "db.client.connection.pending_requests",
    } <= set(result["metrics"])
