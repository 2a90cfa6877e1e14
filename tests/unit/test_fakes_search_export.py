"""`hybrid_search`, `export` and `erase`: one behaviour suite on the in-memory fakes and on the
SQL repositories (as in test_fakes.py), so the fakes cannot drift from the real semantics."""

import json

import pytest
from pydantic import ValidationError

from darasa_db import NotFoundError
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    ErasureReport,
    InterviewCreate,
    JobInfoCreate,
    Message,
    QuestionCreate,
    UserUpsert,
)

DIMENSIONS = 1536
_REPOSITORIES = {"in_memory": "darasa_memory_db", "postgres": "darasa_db"}


@pytest.fixture(params=list(_REPOSITORIES))
def repos(request):
    """The fake, or the SQL repositories on a fresh migrated database."""
    return request.getfixturevalue(_REPOSITORIES[request.param])


def vec(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> list[float]:
    """A 1536-d embedding with these components on its first three axes."""
    values = [0.0] * DIMENSIONS
    values[:3] = [x, y, z]
    return values


async def make_user(repos, tag: str):
    return await repos.users.upsert(UserUpsert(id=f"user_{tag}", email=f"{tag}@b.co", name=tag))


async def shelf(repos, user_id: str) -> None:
    """Four documents: three about caching, close to the x axis in decreasing order; one far
    away (on -x) with the rare keyword."""
    for n, (x, y) in enumerate([(1.0, 0.1), (1.0, 0.5), (1.0, 1.0)]):
        await repos.documents.create(
            user_id,
            DocumentCreate(
                title=f"Caching {n}",
                content="Cache invalidation with tags.",
                metadata={"kind": "cache"},
                embedding=vec(x, y),
            ),
        )
    await repos.documents.create(
        user_id,
        DocumentCreate(
            title="Changelog",
            content="The quokka release adds a listener.",
            metadata={"kind": "release"},
            embedding=vec(-1.0),
        ),
    )


async def test_hybrid_keyword_wins_over_a_far_embedding(repos):
    user = await make_user(repos, "ada")
    await shelf(repos, user.id)
    matches = await repos.documents.hybrid_search("quokka", vec(1.0), user_id=user.id, limit=2)
    assert [m.document.title for m in matches] == ["Changelog", "Caching 0"]
    assert (matches[0].text_rank, matches[0].vector_rank) == (1, 4)
    assert matches[0].score == pytest.approx(1 / 61 + 1 / 64)
    assert (matches[1].text_rank, matches[1].vector_rank) == (None, 1)


async def test_hybrid_without_keyword_match_is_vector_order(repos):
    user = await make_user(repos, "ada")
    await shelf(repos, user.id)
    matches = await repos.documents.hybrid_search("zebra", vec(1.0), user_id=user.id, limit=10)
    similar = await repos.documents.similarity_search(vec(1.0), user_id=user.id, limit=10)
    assert [m.document.id for m in matches] == [m.document.id for m in similar]
    assert [m.vector_rank for m in matches] == [1, 2, 3, 4]
    assert [m.score for m in matches] == pytest.approx([1 / 61, 1 / 62, 1 / 63, 1 / 64])


async def test_hybrid_owner_and_metadata_filters(repos):
    ada = await make_user(repos, "ada")
    bob = await make_user(repos, "bob")
    await shelf(repos, ada.id)
    await repos.documents.create(
        bob.id, DocumentCreate(title="quokka", content="quokka", embedding=vec(1.0))
    )
    mine = await repos.documents.hybrid_search("quokka", vec(1.0), user_id=ada.id, limit=10)
    assert len(mine) == 4
    assert {m.document.user_id for m in mine} == {ada.id}
    cache_only = await repos.documents.hybrid_search(
        "quokka", vec(1.0), user_id=ada.id, metadata={"kind": "cache"}
    )
    assert [m.document.title for m in cache_only] == ["Caching 0", "Caching 1", "Caching 2"]
    text_only = await repos.documents.hybrid_search("quokka", None, user_id=ada.id)
    assert [(m.document.title, m.text_rank, m.vector_rank) for m in text_only] == [
        ("Changelog", 1, None)
    ]


async def test_hybrid_bad_input(repos):
    user = await make_user(repos, "ada")
    with pytest.raises(ValidationError, match="query_text"):
        await repos.documents.hybrid_search(None, None, user_id=user.id)
    with pytest.raises(ValidationError, match="query_text"):
        await repos.documents.hybrid_search("", None, user_id=user.id)
    with pytest.raises(ValidationError, match="embedding"):
        await repos.documents.hybrid_search("quokka", [1.0, 2.0], user_id=user.id)
    with pytest.raises(ValueError, match="limit"):
        await repos.documents.hybrid_search("quokka", None, user_id=user.id, limit=1001)


async def world(repos, tag: str) -> str:
    """A user with one row in every table."""
    user = await make_user(repos, tag)
    job = await repos.job_infos.create(
        user.id, JobInfoCreate(name="Acme", experience_level="junior", description="Work")
    )
    await repos.questions.create(
        job.id, QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
    )
    await repos.interviews.create(job.id, InterviewCreate(duration="5 minutes"), user_id=user.id)
    await repos.documents.create(
        user.id, DocumentCreate(title="Doc", content="text", embedding=vec(0.5, 0.25))
    )
    chat = await repos.conversations.create(user.id, ConversationCreate(title="Chat"))
    await repos.conversations.append_messages(
        chat.id, [Message(role="user", content="hello")], user_id=user.id
    )
    return user.id


async def test_export_layout(repos):
    user_id = await world(repos, "ada")
    await world(repos, "bob")
    export = await repos.users.export(user_id)
    assert json.loads(json.dumps(export)) == export
    assert set(export) == {
        "format_version",
        "exported_at",
        "user",
        "job_infos",
        "documents",
        "conversations",
    }
    assert export["format_version"] == 1
    assert export["user"]["id"] == user_id
    assert export["user"]["has_password"] is False
    [job] = export["job_infos"]
    assert job["experience_level"] == "junior"
    assert [q["text"] for q in job["questions"]] == ["Why?"]
    assert [i["duration"] for i in job["interviews"]] == ["5 minutes"]
    [document] = export["documents"]
    assert document["embedding"][:3] == [0.5, 0.25, 0.0]
    assert export["conversations"][0]["messages"] == [{"role": "user", "content": "hello"}]
    with pytest.raises(NotFoundError):
        await repos.users.export("user_nobody")


async def test_erase_counts_and_leaves_others(repos):
    ada = await world(repos, "ada")
    bob = await world(repos, "bob")
    bob_before = await repos.users.export(bob)
    report = await repos.users.erase(ada)
    assert report == ErasureReport(
        user_id=ada,
        counts={
            "users": 1,
            "job_info": 1,
            "questions": 1,
            "interviews": 1,
            "documents": 1,
            "conversations": 1,
        },
    )
    assert await repos.users.get(ada) is None
    assert await repos.documents.list_for_user(ada) == []
    with pytest.raises(NotFoundError):
        await repos.users.export(ada)
    with pytest.raises(NotFoundError):
        await repos.users.erase(ada)
    bob_after = await repos.users.export(bob)
    bob_before.pop("exported_at")
    bob_after.pop("exported_at")
    assert bob_after == bob_before


async def test_erase_in_a_failed_transaction_is_undone(repos):
    ada = await world(repos, "ada")

    async def erase_then_fail() -> None:
        async with repos.transaction() as tx:
            await tx.users.erase(ada)
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        await erase_then_fail()
    assert len((await repos.users.export(ada))["job_infos"]) == 1
