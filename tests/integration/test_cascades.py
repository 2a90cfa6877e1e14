"""Cascading deletes, counted with raw SQL: a user takes all their data, a job info its children."""

from __future__ import annotations

from darasa_db import Database
from darasa_db.schemas import InterviewCreate, QuestionCreate
from integration.helpers import document_input, job_info_input, make_holdings, row_counts

NOTHING = dict.fromkeys(
    ("users", "job_info", "questions", "interviews", "documents", "conversations"), 0
)


async def test_deleting_a_user_removes_all_their_data(darasa_db: Database):
    alice = await make_holdings(darasa_db, "alice", seed=1)
    bob = await make_holdings(darasa_db, "bob", seed=2)
    await darasa_db.documents.create_many(alice.user.id, [document_input(i) for i in range(10)])
    bob_before = await row_counts(darasa_db, bob.user.id)
    assert all(count > 0 for count in (await row_counts(darasa_db, alice.user.id)).values())

    assert await darasa_db.users.delete(alice.user.id) is True

    assert await row_counts(darasa_db, alice.user.id) == NOTHING
    assert await row_counts(darasa_db, bob.user.id) == bob_before
    assert await row_counts(darasa_db) == bob_before
    assert await darasa_db.job_infos.get(alice.job_info.id, user_id=alice.user.id) is None


async def test_deleting_a_job_info_removes_its_questions_and_interviews_only(
    darasa_db: Database,
):
    alice = await make_holdings(darasa_db, "alice", seed=1)
    kept = await darasa_db.job_infos.create(alice.user.id, job_info_input(name="Kept"))
    kept_question = await darasa_db.questions.create(
        kept.id, QuestionCreate(text="stays", difficulty="hard"), user_id=alice.user.id
    )
    kept_interview = await darasa_db.interviews.create(
        kept.id, InterviewCreate(duration="5 minutes"), user_id=alice.user.id
    )
    for i in range(3):
        await darasa_db.questions.create(
            alice.job_info.id,
            QuestionCreate(text=f"q{i}", difficulty="easy"),
            user_id=alice.user.id,
        )

    assert await darasa_db.job_infos.delete(alice.job_info.id, user_id=alice.user.id) is True

    s = darasa_db.schema
    async with darasa_db.connection() as conn:
        cur = await conn.execute(
            f'SELECT (SELECT count(*) FROM "{s}".questions WHERE job_info_id = %(j)s),'
            f' (SELECT count(*) FROM "{s}".interviews WHERE job_info_id = %(j)s)'.encode(),
            {"j": alice.job_info.id},
        )
        assert await cur.fetchone() == (0, 0)
    counts = await row_counts(darasa_db)
    assert (counts["job_info"], counts["questions"], counts["interviews"]) == (1, 1, 1)
    assert (counts["documents"], counts["conversations"]) == (1, 1)
    assert await darasa_db.questions.list_for_job_info(kept.id, user_id=alice.user.id) == [
        kept_question
    ]
    assert await darasa_db.interviews.list_for_job_info(kept.id, user_id=alice.user.id) == [
        kept_interview
    ]
    assert await darasa_db.questions.get(alice.question.id, user_id=alice.user.id) is None
    assert await darasa_db.interviews.get(alice.interview.id, user_id=alice.user.id) is None
