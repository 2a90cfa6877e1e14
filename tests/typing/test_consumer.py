"""The typed host application of `consumer.py`, run on the fakes and on the real database."""

import pytest
from consumer import OnboardingService, onboard_atomically, readiness, service_for

from darasa_db import ConflictError, Database


@pytest.fixture(params=["in_memory", "postgres"])
def service(request) -> OnboardingService:
    """The host's service on the fakes, or on a real `Database`."""
    name = "darasa_db" if request.param == "postgres" else "darasa_memory_db"
    return service_for(request.getfixturevalue(name))


async def test_service_signs_in_and_lists_job_titles_newest_first(service):
    user = await service.sign_in("user_1", "ada@b.co", "Ada")
    for company in ("Acme", "Globex", "Initech"):
        await service.start_preparing(user.id, company, f"Engineer at {company}", "mid-level")

    again = await service.sign_in("user_1", "ada@b.co", "Ada Lovelace")

    assert again.name == "Ada Lovelace"
    assert again.created_at == user.created_at
    assert await service.job_titles(user.id) == [
        "Engineer at Initech",
        "Engineer at Globex",
        "Engineer at Acme",
    ]


async def test_service_cannot_rename_another_users_job(service):
    owner = await service.sign_in("user_1", "ada@b.co", "Ada")
    other = await service.sign_in("user_2", "bob@b.co", "Bob")
    job = await service.start_preparing(owner.id, "Acme", "Engineer", "senior")

    assert await service.rename_job(other.id, str(job.id), "Stolen") is None
    renamed = await service.rename_job(owner.id, str(job.id), "Acme Corp")
    assert renamed is not None
    assert renamed.name == "Acme Corp"


async def test_service_reports_an_email_taken_by_another_user(service):
    await service.sign_in("user_1", "ada@b.co", "Ada")

    with pytest.raises(ConflictError):
        await service.sign_in("user_2", "ADA@b.co", "Not Ada")


async def test_readiness_reports_the_real_database(darasa_db: Database):
    assert await readiness(darasa_db) == {"database": True, "test_mode": True}


async def test_onboarding_in_one_transaction_is_all_or_nothing(darasa_db: Database):
    job = await onboard_atomically(darasa_db, "user_1", "ada@b.co", "Acme")
    assert await darasa_db.job_infos.get(job.id, user_id="user_1") == job

    with pytest.raises(ConflictError):
        await onboard_atomically(darasa_db, "user_2", "Ada@B.co", "Globex")
    assert await darasa_db.users.get("user_2") is None
