"""Hostile input: every field of every input model, tried with every entry of the corpus.

Each entry is either stored and read back unchanged, or refused with a pydantic
`ValidationError` naming the field, before any SQL runs. Meanwhile the schema and the other
users' rows must not change. The corpus convention is described at the top of
tests/data/hostile_inputs.txt.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from darasa_db import Database, DatabaseSettings, schemas
from darasa_db.errors import DarasaDBError, NotFoundError
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    InterviewCreate,
    InterviewUpdate,
    JobInfoCreate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    UserCreate,
    UserUpdate,
    UserUpsert,
)
from darasa_db.schemas._common import InputModel

CORPUS = Path(__file__).parents[1] / "data" / "hostile_inputs.txt"
ATTACKER = "attacker"
VICTIMS = ["victim-1", "victim-2"]
DIMENSIONS = 1536
CONCURRENCY = 4  # test mode allows 5 connections


def load_corpus() -> list[Any]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]


def nested(depth: int) -> dict[str, Any]:
    """A JSON object nested `depth` levels below the top one (built without recursion)."""
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


def generated_strings() -> list[str]:
    """Strings at and just over every length limit, and long runs of multi-code-point text."""
    limits = [50, 200, 255, 320, 500, 1000, 10_000, 100_000, 1_000_000]
    lengths = sorted({n for limit in limits for n in (limit, limit + 1)})
    return [
        "",
        *("x" * n for n in lengths),
        "\U0001f600" * 100_000,  # 400 KB of UTF-8 in 100 000 code points
        "e\u0301" * 50_000,  # combining marks
        "\u202e" * 500,
        "'" * 10_000,
        "\\" * 10_001,
    ]


def generated_embeddings() -> list[Any]:
    zeros = [0.0] * DIMENSIONS
    return [
        [0.5] * DIMENSIONS,  # float32-exact: read back unchanged
        [0.0] * (DIMENSIONS - 1),
        [0.0] * (DIMENSIONS + 1),
        [*zeros[:-1], math.nan],
        [math.inf, *zeros[1:]],
        [*zeros[:700], -math.inf, *zeros[701:]],
        [1e39] * DIMENSIONS,  # finite, but infinite as pgvector's float32
        np.full(DIMENSIONS, np.nan),
        ["'; DROP TABLE darasa.documents; --"] * DIMENSIONS,
    ]


CORPUS_ENTRIES = load_corpus()
STRINGS = [e for e in CORPUS_ENTRIES if isinstance(e, str)] + generated_strings()
METADATA = [
    *(e for e in CORPUS_ENTRIES if isinstance(e, dict)),
    *({"value": s} for s in STRINGS),
    *({s: 1} for s in STRINGS if len(s) < 1000),
    nested(31),
    nested(32),
    nested(100_000),
    {"list": nested_list(40)},
    "not an object",
    ["not", "an", "object"],
]
EMBEDDINGS = [
    e for e in CORPUS_ENTRIES if isinstance(e, list) and all(isinstance(x, int | float) for x in e)
] + generated_embeddings()
MESSAGES = [
    e for e in CORPUS_ENTRIES if isinstance(e, list) and e and all(isinstance(x, dict) for x in e)
] + [[{"role": "user", "content": nested(1000)}], [{"role": "user"}], "not a list"]


@dataclass
class Ids:
    """Rows of the attacker that the writes hang off."""

    job_id: uuid.UUID


@dataclass(frozen=True)
class Target:
    """One field of one input model, and how to write it and read it back."""

    model: type[BaseModel]
    field: str
    base: Callable[[], dict[str, Any]]
    store: Callable[[Database, Ids, Any], Awaitable[tuple[Any, Any]]]
    values: list[Any]

    @property
    def name(self) -> str:
        return f"{self.model.__name__}.{self.field}"


_n = iter(range(10**9))


def unique() -> int:
    return next(_n)


def user_base() -> dict[str, Any]:
    n = unique()
    return {"id": f"hostile-{n}", "email": f"h{n}@x.co", "name": "N"}


async def store_user_create(db: Database, ids: Ids, data: UserCreate) -> tuple[Any, Any]:
    written = await db.users.create(data)
    read = await db.users.get(written.id)
    assert await db.users.delete(written.id)  # ids and emails are unique: make room
    return written, read


async def store_user_upsert(db: Database, ids: Ids, data: UserUpsert) -> tuple[Any, Any]:
    written = await db.users.upsert(data)
    read = await db.users.get(data.id)
    assert await db.users.delete(data.id)
    return written, read


async def store_user_update(db: Database, ids: Ids, data: UserUpdate) -> tuple[Any, Any]:
    user = await db.users.create(UserCreate(**user_base()))
    written = await db.users.update(user.id, data)
    read = await db.users.get(user.id)
    assert await db.users.delete(user.id)
    return written, read


async def store_job_create(db: Database, ids: Ids, data: JobInfoCreate) -> tuple[Any, Any]:
    written = await db.job_infos.create(ATTACKER, data)
    return written, await db.job_infos.get(written.id, user_id=ATTACKER)


JOB = {"name": "n", "experience_level": "junior", "description": "d"}


async def store_job_update(db: Database, ids: Ids, data: JobInfoUpdate) -> tuple[Any, Any]:
    job = await db.job_infos.create(ATTACKER, JobInfoCreate(**JOB))
    written = await db.job_infos.update(job.id, data, user_id=ATTACKER)
    return written, await db.job_infos.get(job.id, user_id=ATTACKER)


async def store_question(db: Database, ids: Ids, data: QuestionCreate) -> tuple[Any, Any]:
    written = await db.questions.create(ids.job_id, data, user_id=ATTACKER)
    return written, await db.questions.get(written.id, user_id=ATTACKER)


async def store_interview(db: Database, ids: Ids, data: InterviewCreate) -> tuple[Any, Any]:
    written = await db.interviews.create(ids.job_id, data, user_id=ATTACKER)
    return written, await db.interviews.get(written.id, user_id=ATTACKER)


async def store_interview_update(db: Database, ids: Ids, data: InterviewUpdate) -> tuple[Any, Any]:
    interview = await db.interviews.create(
        ids.job_id, InterviewCreate(duration="15 minutes"), user_id=ATTACKER
    )
    written = await db.interviews.update(interview.id, data, user_id=ATTACKER)
    return written, await db.interviews.get(interview.id, user_id=ATTACKER)


async def store_document(db: Database, ids: Ids, data: DocumentCreate) -> tuple[Any, Any]:
    written = await db.documents.create(ATTACKER, data)
    return written, await db.documents.get(written.id, user_id=ATTACKER)


async def store_conversation(db: Database, ids: Ids, data: ConversationCreate) -> tuple[Any, Any]:
    written = await db.conversations.create(ATTACKER, data)
    return written, await db.conversations.get(written.id, user_id=ATTACKER)


async def store_message(db: Database, ids: Ids, data: Message) -> tuple[Any, Any]:
    conversation = await db.conversations.create(ATTACKER, ConversationCreate(title="t"))
    written = await db.conversations.append_messages(conversation.id, [data], user_id=ATTACKER)
    read = await db.conversations.get(conversation.id, user_id=ATTACKER)
    assert read is not None
    return written.messages[0], read.messages[0]


def fixed(**values: Any) -> Callable[[], dict[str, Any]]:
    return lambda: dict(values)


def text_targets() -> list[Target]:
    specs: list[tuple[type[BaseModel], list[str], Callable[[], dict[str, Any]], Any]] = [
        (
            UserCreate,
            ["email", "name", "id", "image_url", "password_hash"],
            user_base,
            store_user_create,
        ),
        (UserUpsert, ["id", "email", "name", "image_url"], user_base, store_user_upsert),
        (UserUpdate, ["email", "name", "image_url", "password_hash"], fixed(), store_user_update),
        (
            JobInfoCreate,
            ["name", "title", "experience_level", "description"],
            fixed(**JOB),
            store_job_create,
        ),
        (
            JobInfoUpdate,
            ["name", "title", "experience_level", "description"],
            fixed(),
            store_job_update,
        ),
        (
            QuestionCreate,
            ["text", "difficulty"],
            fixed(text="t", difficulty="easy"),
            store_question,
        ),
        (
            InterviewCreate,
            ["duration", "hume_chat_id", "feedback"],
            fixed(duration="15 minutes"),
            store_interview,
        ),
        (
            InterviewUpdate,
            ["duration", "hume_chat_id", "feedback"],
            fixed(),
            store_interview_update,
        ),
        (DocumentCreate, ["title", "content"], fixed(title="t", content="c"), store_document),
        (ConversationCreate, ["title"], fixed(), store_conversation),
        (Message, ["role", "content"], fixed(role="user", content="c"), store_message),
    ]
    return [
        Target(model, field, base, store, STRINGS)
        for model, fields, base, store in specs
        for field in fields
    ]


def structured_targets() -> list[Target]:
    doc = fixed(title="t", content="c")
    return [
        Target(DocumentCreate, "metadata", doc, store_document, METADATA),
        Target(DocumentCreate, "embedding", doc, store_document, EMBEDDINGS),
        Target(ConversationCreate, "messages", fixed(title="t"), store_conversation, MESSAGES),
    ]


TARGETS = text_targets() + structured_targets()


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON: jsonb keeps numbers as numeric, so 1e20 may come back as an int."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return Decimal(json.dumps(a)) == Decimal(json.dumps(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_stored_unchanged(
    target: Target, value: Any, data: BaseModel, written: Any, read: Any
) -> None:
    """What was written and what is read back equal what was sent (text: the raw entry)."""
    sent = value if isinstance(value, str) else getattr(data, target.field)
    for got in (getattr(written, target.field), getattr(read, target.field)):
        if target.field == "metadata":
            assert same_json(got, sent), f"{target.name} changed {sent!r}"
        elif target.field == "embedding":
            assert got == tuple(float(np.float32(x)) for x in sent), target.name
        elif target.field == "messages":
            assert tuple(m.model_dump() for m in got) == tuple(m.model_dump() for m in sent)
        else:
            assert isinstance(got, str)
            assert got.encode("utf-8") == sent.encode("utf-8"), f"{target.name} changed text"


async def try_entry(db: Database, ids: Ids, target: Target, value: Any) -> str:
    """'stored' or 'refused'; fails the test on anything else."""
    try:
        data = target.model(**{**target.base(), target.field: value})
    except ValidationError as exc:
        fields = {error["loc"][0] for error in exc.errors()}
        assert fields == {target.field}, f"{target.name} refused {value!r:.80} naming {fields}"
        return "refused"
    try:
        written, read = await target.store(db, ids, data)
    except DarasaDBError as exc:
        pytest.fail(f"{target.name} accepted {value!r:.80} but the database refused it: {exc}")
    assert read is not None, f"{target.name}: {value!r:.80} stored but not found"
    assert_stored_unchanged(target, value, data, written, read)
    return "stored"


SCHEMA_DIGEST = """
SELECT md5(string_agg(concat_ws(':', table_schema, table_name, column_name, data_type,
                                 udt_name, is_nullable, column_default, character_maximum_length),
                      E'\\n' ORDER BY table_schema, table_name, ordinal_position))
       || md5((SELECT string_agg(indexdef, E'\\n' ORDER BY indexdef) FROM pg_indexes
               WHERE schemaname NOT IN ('pg_catalog', 'information_schema')))
FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
"""

VICTIM_ROWS = """
WITH rows (tbl, line) AS (
    SELECT 'users', to_jsonb(u)::text FROM darasa.users u WHERE u.id = ANY(%(v)s)
    UNION ALL
    SELECT 'job_info', to_jsonb(j)::text FROM darasa.job_info j WHERE j.user_id = ANY(%(v)s)
    UNION ALL
    SELECT 'questions', to_jsonb(q)::text FROM darasa.questions q
        JOIN darasa.job_info j ON j.id = q.job_info_id WHERE j.user_id = ANY(%(v)s)
    UNION ALL
    SELECT 'interviews', to_jsonb(i)::text FROM darasa.interviews i
        JOIN darasa.job_info j ON j.id = i.job_info_id WHERE j.user_id = ANY(%(v)s)
    UNION ALL
    SELECT 'documents', to_jsonb(d)::text FROM darasa.documents d WHERE d.user_id = ANY(%(v)s)
    UNION ALL
    SELECT 'conversations', to_jsonb(c)::text FROM darasa.conversations c
        WHERE c.user_id = ANY(%(v)s)
)
SELECT tbl, count(*), md5(string_agg(line, E'\\n' ORDER BY line)) FROM rows GROUP BY tbl
ORDER BY tbl
"""


async def snapshot(db: Database) -> tuple[Any, ...]:
    """The schema digest, and per table the victims' row count and checksum."""
    async with db.connection() as conn:
        digest = await (await conn.execute(SCHEMA_DIGEST)).fetchone()
        victims = await (await conn.execute(VICTIM_ROWS, {"v": VICTIMS})).fetchall()
    return digest, victims


async def seed(db: Database) -> Ids:
    """The victims, with a row in every table, and the attacker with a job info."""
    for victim in [*VICTIMS, ATTACKER]:
        user = await db.users.create(UserCreate(id=victim, email=f"{victim}@x.co", name=victim))
        job = await db.job_infos.create(user.id, JobInfoCreate(**JOB))
        question = QuestionCreate(text="q", difficulty="hard")
        await db.questions.create(job.id, question, user_id=user.id)
        await db.interviews.create(job.id, InterviewCreate(duration="5 minutes"), user_id=user.id)
        document = DocumentCreate(
            title="secret", content="c", metadata={"k": "v"}, embedding=[0.25] * DIMENSIONS
        )
        await db.documents.create(user.id, document)
        messages = [Message(role="user", content="private")]
        await db.conversations.create(user.id, ConversationCreate(title="c", messages=messages))
    return Ids(job_id=job.id)


@pytest.fixture
async def hostile_db(darasa_database_url: str) -> AsyncIterator[Database]:
    """A test-mode Database without a cache, so that every read-back comes from PostgreSQL."""
    settings = DatabaseSettings(url=darasa_database_url, test_mode=True)
    async with Database(settings, cache=None) as db:
        yield db


def test_targets_cover_every_field_of_every_input_model():
    input_models = {
        obj
        for obj in vars(schemas).values()
        if isinstance(obj, type) and issubclass(obj, InputModel)
    }
    every_field = {f"{m.__name__}.{f}" for m in input_models for f in m.model_fields}
    assert {t.name for t in TARGETS} == every_field


async def test_hostile_input_is_stored_exactly_or_refused_naming_the_field(hostile_db):
    db = hostile_db
    ids = await seed(db)
    before = await snapshot(db)
    assert len(before[1]) == 6  # the victims have rows in every table

    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: dict[str, int] = {"stored": 0, "refused": 0}

    async def bounded(target: Target, value: Any) -> None:
        async with gate:
            outcomes[await try_entry(db, ids, target, value)] += 1

    for target in TARGETS:  # one target at a time: user ids and emails must not collide
        await asyncio.gather(*(bounded(target, value) for value in target.values))

    after = await snapshot(db)
    total = sum(len(t.values) for t in TARGETS)
    print(f"\nhostile input: {len(TARGETS)} fields x entries = {total} tries, {outcomes}")
    assert after == before
    assert outcomes["stored"] > 0
    assert outcomes["refused"] > 0


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot hold: NUL characters or lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


async def test_hostile_keys_in_lookups_find_nothing(hostile_db):
    db = hostile_db
    await seed(db)
    before = await snapshot(db)
    for value in filter(storable, STRINGS):
        assert await db.users.get(value) is None
        assert await db.users.get_by_email(value) is None
        assert await db.job_infos.list_for_user(value) == []
        assert await db.job_infos.get(value, user_id=ATTACKER) is None
        assert await db.documents.list_for_user(value) == []
        assert not await db.job_infos.delete(value, user_id=ATTACKER)
    for value in ("a\x00b", "\ud800"):  # cannot even be stored: names no row
        assert await db.users.get(value) is None
        with pytest.raises(NotFoundError):
            await db.job_infos.create(value, JobInfoCreate(**JOB))
    assert await snapshot(db) == before
