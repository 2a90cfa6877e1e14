"""One behaviour suite, run on the in-memory fakes and on the SQL repositories.

Every test here takes `repos`: an `InMemoryDatabase`, or a real `Database` on PostgreSQL. Both
must pass the same assertions, so the fakes cannot drift from the real semantics.
"""

import asyncio
import math
import uuid

import pytest
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from darasa_db import ConflictError, NotFoundError
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
from darasa_db.testing.fakes import jsonb_contains

DIMENSIONS = 1536


_REPOSITORIES = {"in_memory": "darasa_memory_db", "postgres": "darasa_db", "pgbouncer": "pooled_db"}


@pytest.fixture(params=list(_REPOSITORIES))
def repos(request):
    """The fake, the SQL repositories on a fresh migrated database, or the same behind a
    transaction-mode PgBouncer with production defaults."""
    return request.getfixturevalue(_REPOSITORIES[request.param])


def vec(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> list[float]:
    """A 1536-d embedding with these components on its first three axes."""
    values = [0.0] * DIMENSIONS
    values[:3] = [x, y, z]
    return values


def job(name: str = "Acme") -> JobInfoCreate:
    return JobInfoCreate(name=name, experience_level="senior", description="Backend work")


async def make_user(repos, tag: str):
    return await repos.users.upsert(UserUpsert(id=f"user_{tag}", email=f"{tag}@b.co", name=tag))


async def owned_world(repos, tag: str):
    """A user with one of everything."""
    user = await make_user(repos, tag)
    job_info = await repos.job_infos.create(user.id, job())
    question = await repos.questions.create(
        job_info.id, QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
    )
    interview = await repos.interviews.create(
        job_info.id, InterviewCreate(duration="15 minutes"), user_id=user.id
    )
    document = await repos.documents.create(
        user.id, DocumentCreate(title="Doc", content="text", embedding=vec(1.0))
    )
    conversation = await repos.conversations.create(user.id, ConversationCreate(title="Chat"))
    return user, job_info, question, interview, document, conversation


# ---------------------------------------------------------------- ownership


@pytest.mark.embedded_smoke
async def test_foreign_user_sees_owned_rows_as_missing(repos):
    owner, job_info, question, interview, document, conversation = await owned_world(repos, "a")
    other = await make_user(repos, "b")
    me = {"user_id": other.id}

    assert await repos.job_infos.get(job_info.id, **me) is None
    assert await repos.questions.get(question.id, **me) is None
    assert await repos.interviews.get(interview.id, **me) is None
    assert await repos.documents.get(document.id, **me) is None
    assert await repos.conversations.get(conversation.id, **me) is None
    assert await repos.job_infos.list_for_user(other.id) == []
    assert await repos.questions.list_for_job_info(job_info.id, **me) == []
    assert await repos.interviews.list_for_job_info(job_info.id, **me) == []
    assert await repos.documents.similarity_search(vec(1.0), **me) == []
    with pytest.raises(NotFoundError):
        await repos.job_infos.update(job_info.id, JobInfoUpdate(name="Mine"), **me)
    with pytest.raises(NotFoundError):
        await repos.interviews.update(interview.id, InterviewUpdate(feedback="x"), **me)
    with pytest.raises(NotFoundError):
        await repos.questions.create(
            job_info.id, QuestionCreate(text="Sneaky", difficulty="hard"), **me
        )
    with pytest.raises(NotFoundError):
        await repos.interviews.create(job_info.id, InterviewCreate(duration="5 minutes"), **me)
    with pytest.raises(NotFoundError):
        await repos.conversations.append_messages(
            conversation.id, [Message(role="user", content="hi")], **me
        )
    with pytest.raises(NotFoundError):
        await repos.conversations.rename(conversation.id, "Mine", **me)
    assert await repos.questions.delete(question.id, **me) is False
    assert await repos.documents.delete(document.id, **me) is False
    assert await repos.conversations.delete(conversation.id, **me) is False
    assert await repos.job_infos.delete(job_info.id, **me) is False

    assert await repos.job_infos.get(job_info.id, user_id=owner.id) == job_info
    assert await repos.questions.get(question.id, user_id=owner.id) == question
    assert await repos.conversations.get(conversation.id, user_id=owner.id) == conversation


async def test_malformed_ids_behave_as_missing(repos):
    user = await make_user(repos, "a")

    assert await repos.job_infos.get("not-a-uuid", user_id=user.id) is None
    assert await repos.documents.delete("not-a-uuid", user_id=user.id) is False
    with pytest.raises(NotFoundError):
        await repos.questions.create(
            "not-a-uuid", QuestionCreate(text="?", difficulty="easy"), user_id=user.id
        )
    with pytest.raises(NotFoundError):
        await repos.conversations.rename("not-a-uuid", "x", user_id=user.id)


# ---------------------------------------------------------------- users


async def test_duplicate_email_conflicts_in_any_case(repos):
    ada = await repos.users.create(UserCreate(id="user_ada", email="ada@b.co", name="Ada"))
    bob = await repos.users.create(UserCreate(id="user_bob", email="bob@b.co", name="Bob"))

    with pytest.raises(ConflictError) as created:
        await repos.users.create(UserCreate(email="ADA@B.CO", name="Imposter"))
    with pytest.raises(ConflictError):
        await repos.users.upsert(UserUpsert(id="user_new", email="Ada@b.co", name="New"))
    with pytest.raises(ConflictError):
        await repos.users.update(bob.id, UserUpdate(email="ada@B.co"))
    with pytest.raises(ConflictError) as same_id:
        await repos.users.create(UserCreate(id="user_ada", email="other@b.co", name="Ada 2"))

    assert created.value.field == "email"
    assert same_id.value.field == "id"
    assert await repos.users.get_by_email("BOB@b.co") == bob
    assert await repos.users.get("user_new") is None
    renamed = await repos.users.upsert(UserUpsert(id=ada.id, email="ADA@b.co", name="Ada L."))
    assert (renamed.email, renamed.name, renamed.created_at) == (
        "ADA@b.co",
        "Ada L.",
        ada.created_at,
    )


async def test_user_create_generates_an_id_and_update_writes_only_given_fields(repos):
    user = await repos.users.create(
        UserCreate(email="c@b.co", name="Cy", image_url="https://img/c.png")
    )

    updated = await repos.users.update(user.id, UserUpdate(name="Cyrus"))

    assert uuid.UUID(user.id)
    assert (updated.name, updated.email, updated.image_url) == ("Cyrus", "c@b.co", user.image_url)
    assert updated.updated_at > user.updated_at
    assert await repos.users.get(user.id) == updated


async def test_unknown_user_or_job_info_is_not_found(repos):
    nobody = {"user_id": "user_ghost"}
    missing_job = uuid.uuid4()

    with pytest.raises(NotFoundError, match="user"):
        await repos.job_infos.create("user_ghost", job())
    with pytest.raises(NotFoundError, match="user"):
        await repos.documents.create("user_ghost", DocumentCreate(title="t", content="c"))
    with pytest.raises(NotFoundError, match="user"):
        await repos.documents.create_many("user_ghost", [DocumentCreate(title="t", content="c")])
    with pytest.raises(NotFoundError, match="user"):
        await repos.conversations.create("user_ghost", ConversationCreate(title="t"))
    with pytest.raises(NotFoundError, match="job_info"):
        await repos.questions.create(
            missing_job, QuestionCreate(text="?", difficulty="easy"), **nobody
        )
    with pytest.raises(NotFoundError, match="job_info"):
        await repos.interviews.create(missing_job, InterviewCreate(duration="5 min"), **nobody)
    with pytest.raises(NotFoundError, match="user"):
        await repos.users.update("user_ghost", UserUpdate(name="Ghost"))
    assert await repos.users.delete("user_ghost") is False


# ---------------------------------------------------------------- cascades


async def test_deleting_a_user_removes_all_their_data(repos):
    user, job_info, question, interview, document, conversation = await owned_world(repos, "a")
    _, other_job, *_ = await owned_world(repos, "b")
    mine = {"user_id": user.id}

    assert await repos.users.delete(user.id) is True

    assert await repos.users.get(user.id) is None
    assert await repos.job_infos.get(job_info.id, **mine) is None
    assert await repos.questions.get(question.id, **mine) is None
    assert await repos.interviews.get(interview.id, **mine) is None
    assert await repos.documents.get(document.id, **mine) is None
    assert await repos.conversations.get(conversation.id, **mine) is None
    assert await repos.job_infos.get(other_job.id, user_id="user_b") == other_job
    assert await repos.users.delete(user.id) is False


async def test_deleting_a_job_info_removes_its_questions_and_interviews(repos):
    user, job_info, question, interview, document, _ = await owned_world(repos, "a")
    kept = await repos.job_infos.create(user.id, job("Kept"))
    kept_question = await repos.questions.create(
        kept.id, QuestionCreate(text="Stay?", difficulty="medium"), user_id=user.id
    )
    mine = {"user_id": user.id}

    assert await repos.job_infos.delete(job_info.id, **mine) is True

    assert await repos.questions.get(question.id, **mine) is None
    assert await repos.interviews.get(interview.id, **mine) is None
    assert await repos.questions.list_for_job_info(kept.id, **mine) == [kept_question]
    assert await repos.documents.get(document.id, **mine) == document
    assert await repos.job_infos.delete(job_info.id, **mine) is False


# ---------------------------------------------------------------- pages


async def test_pages_run_newest_first_and_continue_after_the_last_id(repos):
    user = await make_user(repos, "a")
    created = [await repos.job_infos.create(user.id, job(f"Job {n}")) for n in range(5)]

    pages, after = [], None
    while True:
        page = await repos.job_infos.list_for_user(user.id, limit=2, after=after)
        if not page:
            break
        pages.append([j.name for j in page])
        after = page[-1].id

    assert pages == [["Job 4", "Job 3"], ["Job 2", "Job 1"], ["Job 0"]]
    assert await repos.job_infos.list_for_user(user.id) == created[::-1]
    assert await repos.job_infos.list_for_user(user.id, after=uuid.uuid4()) == []
    assert await repos.job_infos.list_for_user(user.id, after="not-a-uuid") == []
    with pytest.raises(ValueError, match="limit"):
        await repos.job_infos.list_for_user(user.id, limit=0)


async def test_documents_and_conversations_page_the_same_way(repos):
    user = await make_user(repos, "a")
    other = await make_user(repos, "b")
    docs = [
        await repos.documents.create(user.id, DocumentCreate(title=f"D{n}", content="c"))
        for n in range(3)
    ]
    chats = [
        await repos.conversations.create(user.id, ConversationCreate(title=f"C{n}"))
        for n in range(3)
    ]
    await repos.documents.create(other.id, DocumentCreate(title="theirs", content="c"))

    first = await repos.documents.list_for_user(user.id, limit=2)
    rest = await repos.documents.list_for_user(user.id, limit=2, after=first[-1].id)
    chat_page = await repos.conversations.list_for_user(user.id, limit=2, after=chats[2].id)

    assert first + rest == docs[::-1]
    assert chat_page == [chats[1], chats[0]]
    assert await repos.documents.list_for_user(user.id, after=docs[0].id) == []


async def test_children_list_newest_first(repos):
    user = await make_user(repos, "a")
    job_info = await repos.job_infos.create(user.id, job())
    mine = {"user_id": user.id}
    questions = [
        await repos.questions.create(
            job_info.id, QuestionCreate(text=f"Q{n}", difficulty="easy"), **mine
        )
        for n in range(3)
    ]
    interview = await repos.interviews.create(
        job_info.id, InterviewCreate(duration="15 minutes"), **mine
    )

    assert await repos.questions.list_for_job_info(job_info.id, **mine) == questions[::-1]
    assert await repos.questions.delete(questions[1].id, **mine) is True
    assert await repos.questions.list_for_job_info(job_info.id, **mine) == [
        questions[2],
        questions[0],
    ]
    assert await repos.interviews.list_for_job_info(job_info.id, **mine) == [interview]


# ---------------------------------------------------------------- updates


async def test_updates_write_only_the_given_fields(repos):
    user = await make_user(repos, "a")
    job_info = await repos.job_infos.create(
        user.id,
        JobInfoCreate(name="Acme", title="Engineer", experience_level="junior", description="d"),
    )
    interview = await repos.interviews.create(
        job_info.id, InterviewCreate(duration="15 minutes", hume_chat_id="chat_1"), user_id=user.id
    )

    renamed = await repos.job_infos.update(
        job_info.id, JobInfoUpdate(name="Acme Corp"), user_id=user.id
    )
    reviewed = await repos.interviews.update(
        interview.id, InterviewUpdate(feedback="Great"), user_id=user.id
    )

    assert (renamed.name, renamed.title, renamed.experience_level) == (
        "Acme Corp",
        "Engineer",
        "junior",
    )
    assert renamed.created_at == job_info.created_at
    assert renamed.updated_at > job_info.updated_at
    assert (reviewed.feedback, reviewed.duration, reviewed.hume_chat_id) == (
        "Great",
        "15 minutes",
        "chat_1",
    )
    assert await repos.interviews.get(interview.id, user_id=user.id) == reviewed


# ---------------------------------------------------------------- similarity search


async def test_similarity_search_ranks_the_callers_documents_best_first(repos):
    user = await make_user(repos, "a")
    other = await make_user(repos, "b")
    half = 1 / math.sqrt(2)
    for title, embedding in [
        ("same", vec(1.0)),
        ("diagonal", vec(1.0, 1.0)),
        ("orthogonal", vec(0.0, 1.0)),
        ("opposite", vec(-1.0)),
        ("none", None),
    ]:
        await repos.documents.create(
            user.id, DocumentCreate(title=title, content=title, embedding=embedding)
        )
    await repos.documents.create(
        other.id, DocumentCreate(title="theirs", content="x", embedding=vec(1.0))
    )

    ranked = await repos.documents.similarity_search(vec(2.0), user_id=user.id, limit=10)
    top_two = await repos.documents.similarity_search(vec(2.0), user_id=user.id, limit=2)
    close = await repos.documents.similarity_search(vec(1.0), user_id=user.id, threshold=0.5)

    assert [m.document.title for m in ranked] == ["same", "diagonal", "orthogonal", "opposite"]
    assert [m.similarity for m in ranked] == pytest.approx([1.0, half, 0.0, -1.0], abs=1e-5)
    assert all(m.document.user_id == user.id for m in ranked)
    assert [m.document.title for m in top_two] == ["same", "diagonal"]
    assert [m.document.title for m in close] == ["same", "diagonal"]
    assert ranked[0].document == await repos.documents.get(ranked[0].document.id, user_id=user.id)


async def test_all_zero_embeddings_are_refused_and_nothing_is_stored(repos):
    user = await make_user(repos, "a")

    with pytest.raises(ValidationError) as stored:
        DocumentCreate(title="zero", content="c", embedding=vec())
    with pytest.raises(ValidationError):
        await repos.documents.similarity_search(vec(), user_id=user.id)

    assert stored.value.errors()[0]["loc"] == ("embedding",)
    assert await repos.documents.list_for_user(user.id) == []


async def test_similarity_search_validates_its_input(repos):
    user = await make_user(repos, "a")

    with pytest.raises(ValidationError):
        await repos.documents.similarity_search([1.0, 0.0], user_id=user.id)
    with pytest.raises(ValidationError):
        await repos.documents.similarity_search(vec(math.nan), user_id=user.id)
    with pytest.raises(ValueError, match="threshold"):
        await repos.documents.similarity_search(vec(1.0), user_id=user.id, threshold=1.5)
    with pytest.raises(ValueError, match="limit"):
        await repos.documents.similarity_search(vec(1.0), user_id=user.id, limit=0)


METADATA = {
    "source": {"kind": "pdf", "pages": [1, 2, 3]},
    "tags": ["ml", "rag"],
    "lang": "en",
    "draft": False,
    "score": 1,
    "note": None,
}


METADATA_FILTERS = [
    ({}, True),
    ({"lang": "en"}, True),
    ({"lang": "EN"}, False),
    ({"tags": ["rag"]}, True),
    ({"tags": ["rag", "ml", "rag"]}, True),
    ({"tags": []}, True),
    ({"tags": ["go"]}, False),
    ({"tags": "rag"}, False),  # the array-contains-scalar exception is top-level only
    ({"source": {"kind": "pdf"}}, True),
    ({"source": {"pages": [3, 1]}}, True),
    ({"source": {}}, True),
    ({"source": {"kind": "pdf", "pages": [4]}}, False),
    ({"source": {"pages": 1}}, False),
    ({"kind": "pdf"}, False),
    ({"draft": False}, True),
    ({"draft": 0}, False),
    ({"score": 1.0}, True),
    ({"score": True}, False),
    ({"score": "1"}, False),
    ({"note": None}, True),
    ({"missing": None}, False),
]


async def test_metadata_filter_follows_jsonb_containment(repos):
    user = await make_user(repos, "a")
    document = await repos.documents.create(
        user.id, DocumentCreate(title="t", content="c", metadata=METADATA, embedding=vec(1.0))
    )

    for wanted, matches in METADATA_FILTERS:
        found = await repos.documents.similarity_search(vec(1.0), user_id=user.id, metadata=wanted)

        assert [m.document.id for m in found] == ([document.id] if matches else []), wanted
        assert jsonb_contains(METADATA, wanted) is matches, wanted


JSONB_CASES = [
    ({"a": 1}, {"a": 1}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}),
    ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}),
    ({"a": [1, 2]}, {"a": 1}),
    ({"a": "1"}, {"a": 1}),
    ({"a": None}, {"a": None}),
    ({"a": 1}, {}),
    ({}, {}),
    ([1, 2, 3], [3, 1]),
    ([1, 2, 3], [1, 1]),
    ([1], []),
    ([], [1]),
    ([[1, 2], [3]], [[1]]),
    ([[1, 2]], [1]),
    ([1, [2]], [2]),
    ([{"a": 1, "b": 2}], [{"a": 1}]),
    ({"x": [{"y": [1, 2]}]}, {"x": [{"y": [2]}]}),
    (["a", "b"], "a"),
    ([["a"]], "a"),
    ("a", "a"),
    ("a", ["a"]),
    (1, 1.0),
    (1.5, 1.50),
    (10**20, 1e20),
    (True, 1),
    ([True], [1]),
    ([0], [False]),
    (None, None),
    ([None], [None]),
    ({"a": 1}, [{"a": 1}]),
]


async def test_jsonb_contains_agrees_with_postgres(darasa_db):
    async with darasa_db.transaction() as tx:
        for container, contained in JSONB_CASES:
            cur = await tx.connection.execute(
                "SELECT %s @> %s", (Jsonb(container), Jsonb(contained))
            )
            row = await cur.fetchone()
            assert row is not None
            expected = row[0]
            assert jsonb_contains(container, contained) is expected, (container, contained)


async def test_create_many_is_all_or_nothing(repos):
    user = await make_user(repos, "a")
    batch = [DocumentCreate(title=f"B{n}", content="c", embedding=vec(1.0, n)) for n in range(3)]

    with pytest.raises(TypeError, match=r"documents\[1\]"):
        await repos.documents.create_many(user.id, [batch[0], {"title": "raw dict"}])
    assert await repos.documents.list_for_user(user.id) == []

    assert await repos.documents.create_many(user.id, batch) == 3
    assert await repos.documents.create_many(user.id, []) == 0
    stored = await repos.documents.list_for_user(user.id)
    assert sorted(d.title for d in stored) == ["B0", "B1", "B2"]
    best = await repos.documents.similarity_search(vec(1.0), user_id=user.id, limit=1)
    assert best[0].document.title == "B0"


# ---------------------------------------------------------------- conversations


async def test_append_messages_extends_the_conversation_in_order(repos):
    user = await make_user(repos, "a")
    chat = await repos.conversations.create(
        user.id,
        ConversationCreate(title="Chat", messages=[Message(role="system", content="Be brief")]),
    )
    mine = {"user_id": user.id}

    appended = await repos.conversations.append_messages(
        chat.id,
        [Message(role="user", content="Hi"), Message(role="assistant", content="Hello")],
        **mine,
    )
    unchanged = await repos.conversations.append_messages(chat.id, [], **mine)
    renamed = await repos.conversations.rename(chat.id, "Greeting", **mine)

    assert [(m.role, m.content) for m in appended.messages] == [
        ("system", "Be brief"),
        ("user", "Hi"),
        ("assistant", "Hello"),
    ]
    assert appended.updated_at > chat.updated_at
    assert unchanged == appended
    assert (renamed.title, renamed.messages) == ("Greeting", appended.messages)
    assert await repos.conversations.get(chat.id, **mine) == renamed
    with pytest.raises(ValidationError, match="title"):
        await repos.conversations.rename(chat.id, "", **mine)
    with pytest.raises(TypeError, match=r"messages\[0\] must be a Message"):
        await repos.conversations.append_messages(
            chat.id, [{"role": "robot", "content": "beep"}], **mine
        )


async def test_concurrent_appends_lose_nothing(repos):
    user = await make_user(repos, "a")
    chat = await repos.conversations.create(user.id, ConversationCreate(title="Busy"))

    await asyncio.gather(
        *(
            repos.conversations.append_messages(
                chat.id, [Message(role="user", content=f"m{n}")], user_id=user.id
            )
            for n in range(8)
        )
    )

    final = await repos.conversations.get(chat.id, user_id=user.id)
    assert sorted(m.content for m in final.messages) == [f"m{n}" for n in range(8)]


# ---------------------------------------------------------------- transactions and DTOs


async def test_transaction_rolls_back_every_write_on_error(repos):
    kept = await make_user(repos, "kept")

    async def write_then_fail() -> None:
        async with repos.transaction() as tx:
            user = await tx.users.upsert(UserUpsert(id="user_tx", email="tx@b.co", name="Tx"))
            await tx.job_infos.create(user.id, job())
            await tx.users.delete(kept.id)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await write_then_fail()

    assert await repos.users.get("user_tx") is None
    assert await repos.users.get(kept.id) == kept
    async with repos.transaction() as tx:
        committed = await tx.users.upsert(UserUpsert(id="user_ok", email="ok@b.co", name="Ok"))
    assert await repos.users.get("user_ok") == committed


async def test_returned_rows_are_frozen_dtos(repos):
    user, job_info, *_ = await owned_world(repos, "a")

    with pytest.raises(ValidationError):
        user.name = "Changed"
    with pytest.raises(ValidationError):
        job_info.name = "Changed"
    assert job_info.created_at.tzinfo is not None
    assert isinstance(job_info.id, uuid.UUID)
