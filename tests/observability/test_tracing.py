"""Every repository call is a span `<repository>.<method>` with the database semantic
conventions, its rows, its cache outcome and its error type, and never a parameter value."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from darasa_db import ConflictError, Database, NotFoundError
from darasa_db import repositories as protocols
from darasa_db.schemas import (
    ConversationCreate,
    InterviewCreate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    UserCreate,
    UserUpsert,
)
from darasa_db.telemetry import _OPERATIONS
from integration.helpers import document_input, job_info_input, unit_vector


def only(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [span for span in spans.get_finished_spans() if span.name == name]
    assert len(found) == 1, [span.name for span in spans.get_finished_spans()]
    return found[0]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def expected_connection(db: Database) -> dict[str, Any]:
    dbname = conninfo_to_dict(db.settings.conninfo)["dbname"]
    return {
        "db.system.name": "postgresql",
        "db.namespace": f"{dbname}.{db.schema}",
        "server.address": db.settings.host,
        "server.port": db.settings.port,
    }


async def test_a_cached_read_is_a_miss_then_a_hit(db: Database, spans: InMemorySpanExporter):
    user = await db.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="Ada"))
    job = await db.job_infos.create(user.id, job_info_input())
    spans.clear()

    assert await db.job_infos.get(job.id, user_id=user.id) == job
    assert await db.job_infos.get(job.id, user_id=user.id) == job

    miss, hit = spans.get_finished_spans()
    assert miss.name == hit.name == "job_infos.get"
    assert miss.kind == hit.kind == SpanKind.CLIENT
    assert attributes(miss) == {
        **expected_connection(db),
        "db.operation.name": "SELECT",
        "db.collection.name": "job_info",
        "db.response.returned_rows": 1,
        "darasa.cache": "miss",
    }
    assert attributes(hit) == {**attributes(miss), "darasa.cache": "hit"}
    assert miss.status.status_code == hit.status.status_code == StatusCode.UNSET
    assert miss.instrumentation_scope is not None
    assert miss.instrumentation_scope.name == "darasa_db"


async def test_reads_that_skip_the_cache_say_bypass(db: Database, spans: InMemorySpanExporter):
    user = await db.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="Ada"))
    job = await db.job_infos.create(user.id, job_info_input())
    await db.documents.create(user.id, document_input(1))
    spans.clear()

    async with db.transaction() as tx:
        assert await tx.job_infos.get(job.id, user_id=user.id) == job
        assert await tx.job_infos.get(uuid.uuid4(), user_id=user.id) is None
    matches = await db.documents.similarity_search(unit_vector(1), user_id=user.id)

    found, missing = [s for s in spans.get_finished_spans() if s.name == "job_infos.get"]
    assert attributes(found)["darasa.cache"] == attributes(missing)["darasa.cache"] == "bypass"
    assert attributes(found)["db.response.returned_rows"] == 1
    assert attributes(missing)["db.response.returned_rows"] == 0
    search = attributes(only(spans, "documents.similarity_search"))
    assert search["darasa.cache"] == "bypass"
    assert search["db.response.returned_rows"] == len(matches) == 1
    assert search["db.collection.name"] == "documents"


async def test_a_write_is_a_span_without_cache_outcome(db: Database, spans: InMemorySpanExporter):
    user = await db.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="Ada"))
    await db.job_infos.create(user.id, job_info_input())
    assert await db.job_infos.delete(uuid.uuid4(), user_id=user.id) is False

    upsert = attributes(only(spans, "users.upsert"))
    assert upsert == {
        **expected_connection(db),
        "db.operation.name": "INSERT",
        "db.collection.name": "users",
        "db.response.returned_rows": 1,
    }
    create = attributes(only(spans, "job_infos.create"))
    assert create["db.operation.name"] == "INSERT"
    assert create["db.collection.name"] == "job_info"
    assert "darasa.cache" not in create
    delete = attributes(only(spans, "job_infos.delete"))
    assert delete["db.operation.name"] == "DELETE"
    assert delete["db.response.returned_rows"] == 0


async def test_an_error_is_recorded_by_type_without_its_message(
    db: Database, spans: InMemorySpanExporter
):
    user = await db.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="Ada"))
    missing = uuid.uuid4()

    with pytest.raises(NotFoundError):
        await db.job_infos.update(missing, JobInfoUpdate(name="Other"), user_id=user.id)
    with pytest.raises(ConflictError):  # the same email under another id: a unique violation
        await db.users.create(UserCreate(id="user_eve", email="ADA@example.com", name="Eve"))

    update = only(spans, "job_infos.update")
    assert update.status.status_code == StatusCode.ERROR
    assert not update.status.description
    assert attributes(update)["error.type"] == "darasa_db.NotFoundError"
    assert "db.response.status_code" not in attributes(update)  # (no SQL error behind it)
    assert update.events == ()
    create = only(spans, "users.create")
    assert create.status.status_code == StatusCode.ERROR
    assert attributes(create)["error.type"] == "darasa_db.ConflictError"
    assert attributes(create)["db.response.status_code"] == "23505"
    assert "db.response.returned_rows" not in attributes(create)
    assert create.events == ()


async def test_transactions_are_traced_like_their_database(
    db: Database, spans: InMemorySpanExporter
):
    async with db.transaction() as tx:
        user = await tx.users.upsert(UserUpsert(id="user_ada", email="ada@example.com", name="A"))
        job = await tx.job_infos.create(user.id, job_info_input())
        await tx.questions.create(
            job.id, QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
        )

    names = [span.name for span in spans.get_finished_spans()]
    assert names == ["users.upsert", "job_infos.create", "questions.create"]
    assert attributes(only(spans, "questions.create"))["db.collection.name"] == "questions"


async def test_nothing_a_caller_passed_reaches_a_span(db: Database, spans: InMemorySpanExporter):
    """Ids, emails, names, texts, metadata and embeddings are personal data: a scan of every
    span name, attribute, event and status finds none of them."""
    secrets: list[str] = []

    def secret(value: str) -> str:
        secrets.append(value)
        return value

    user = await db.users.upsert(
        UserUpsert(
            id=secret("user_7f3k9q"),
            email=secret("zanele.m@example.org"),
            name=secret("Zanele Mokoena"),
        )
    )
    await db.users.get(user.id)
    await db.users.get_by_email(user.email)
    job = await db.job_infos.create(
        user.id, job_info_input(name=secret("Umbrella Corp"), description=secret("Stealth team"))
    )
    secrets.append(str(job.id))
    await db.job_infos.get(job.id, user_id=user.id)
    await db.job_infos.list_for_user(user.id)
    question = await db.questions.create(
        job.id,
        QuestionCreate(text=secret("Tell me about Lagos"), difficulty="hard"),
        user_id=user.id,
    )
    secrets.append(str(question.id))
    await db.questions.list_for_job_info(job.id, user_id=user.id)
    interview = await db.interviews.create(
        job.id, InterviewCreate(duration=secret("17 minutes")), user_id=user.id
    )
    secrets.append(str(interview.id))
    embedding = unit_vector(42)
    secrets.extend(repr(x) for x in embedding[:5])
    document = await db.documents.create(
        user.id,
        document_input(
            title=secret("Medical leave letter"),
            content=secret("diagnosed with asthma"),
            metadata={"kind": secret("health-record")},
            embedding=embedding,
        ),
    )
    secrets.append(str(document.id))
    await db.documents.similarity_search(
        embedding, user_id=user.id, metadata={"kind": "health-record"}
    )
    await db.documents.hybrid_search(secret("asthma letter"), embedding, user_id=user.id)
    conversation = await db.conversations.create(
        user.id, ConversationCreate(title=secret("Salary talk"))
    )
    secrets.append(str(conversation.id))
    await db.conversations.append_messages(
        conversation.id,
        [Message(role="user", content=secret("I earn 91234 a year"))],
        user_id=user.id,
    )
    await db.conversations.rename(conversation.id, secret("Pay rise"), user_id=user.id)
    with pytest.raises(NotFoundError):  # its message names the id
        await db.conversations.rename(uuid.uuid4(), "x", user_id=user.id)
    with pytest.raises(ValidationError):  # its message quotes the input
        await db.documents.similarity_search([0.8125, float("nan")], user_id=secret("user_q1w2"))
    secrets.append("0.8125")
    await db.users.export(user.id)
    await db.users.erase(user.id)

    finished = spans.get_finished_spans()
    assert len(finished) >= 19
    failed = [
        s for s in finished if attributes(s).get("error.type", "").endswith("ValidationError")
    ]
    assert [s.name for s in failed] == ["documents.similarity_search"]
    for span in finished:
        seen = [span.name, span.status.description or ""]
        seen += [str(value) for value in (span.attributes or {}).values()]
        for event in span.events:
            seen.append(event.name)
            seen += [str(value) for value in (event.attributes or {}).values()]
        for value in seen:
            for leaked in secrets:
                assert leaked.lower() not in value.lower(), (span.name, value)
        for value in (span.attributes or {}).values():
            assert not isinstance(value, tuple | list), (span.name, value)  # no vectors


async def test_every_repository_method_is_a_span(db: Database, spans: InMemorySpanExporter):
    repositories = {
        "users": protocols.UserRepository,
        "job_infos": protocols.JobInfoRepository,
        "questions": protocols.QuestionRepository,
        "interviews": protocols.InterviewRepository,
        "documents": protocols.DocumentRepository,
        "conversations": protocols.ConversationRepository,
    }
    for name, protocol in repositories.items():
        repository = getattr(db, name)
        for method in (m for m in vars(protocol) if not m.startswith("_")):
            assert method in _OPERATIONS, f"{name}.{method} has no db.operation.name"
            wrapped = getattr(type(repository), method)
            assert inspect.iscoroutinefunction(wrapped)
            assert wrapped.__qualname__.endswith(f".{method}")
            assert wrapped is not getattr(type(repository).__mro__[1], method), f"{name}.{method}"

    await db.interviews.list_for_job_info(uuid.uuid4(), user_id="user_nobody")
    assert [s.name for s in spans.get_finished_spans()] == ["interviews.list_for_job_info"]
