"""Fixtures of the observability tests: a Database traced and measured through the SDK's
in-memory span exporter and metric reader (providers of the test's own, not the global ones)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cache.helpers import open_database
from darasa_db import Database, TagCache
from darasa_db.telemetry import instrument


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
async def db(
    darasa_database_url: str, spans: InMemorySpanExporter, metric_reader: InMemoryMetricReader
) -> AsyncIterator[Database]:
    """A Database with a listening cache, instrumented with in-memory providers."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[metric_reader])
    database = await open_database(darasa_database_url, TagCache())
    instrument(database, tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield database
    await database.close()
    meter_provider.shutdown()
    tracer_provider.shutdown()
