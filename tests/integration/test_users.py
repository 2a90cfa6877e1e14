"""UserRepository against the real server: create, upsert, get, get_by_email, update, delete."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from darasa_db import ConflictError, Database, NotFoundError
from darasa_db.schemas import User, UserCreate, UserUpdate, UserUpsert
from integration.helpers import row_counts


async def test_create_user_generates_a_uuid_id_when_none_is_given(darasa_db: Database):
    created = await darasa_db.users.create(UserCreate(email="ada@example.com", name="Ada"))

    assert uuid.UUID(created.id)
    assert (created.email, created.name, created.image_url) == ("ada@example.com", "Ada", None)
    assert created.created_at == created.updated_at
    assert await darasa_db.users.get(created.id) == created


async def test_create_user_keeps_the_given_id_and_password_hash(darasa_db: Database):
    created = await darasa_db.users.create(
        UserCreate(
            id="user_2abc",
            email="ada@example.com",
            name="Ada",
            image_url="https://img.example/ada.png",
            password_hash="argon2$hash",
        )
    )

    assert created.id == "user_2abc"
    assert created.password_hash == "argon2$hash"
    assert created.image_url == "https://img.example/ada.png"


@pytest.mark.parametrize("email", ["alice@example.com", "ALICE@Example.COM"])
async def test_create_user_with_a_taken_email_conflicts_in_any_case(
    darasa_db: Database, user: User, email: str
):
    with pytest.raises(ConflictError) as caught:
        await darasa_db.users.create(UserCreate(email=email, name="Mallory"))

    assert caught.value.field == "email"
    assert (await row_counts(darasa_db))["users"] == 1


async def test_emails_differing_in_non_ascii_case_are_the_same_address(darasa_db: Database):
    ada = await darasa_db.users.create(UserCreate(email="äda.straße@example.com", name="Ada"))

    with pytest.raises(ConflictError) as caught:
        await darasa_db.users.create(UserCreate(email="ÄDA.STRASSE@EXAMPLE.COM", name="Mallory"))
    found = await darasa_db.users.get_by_email("ÄDA.Straße@Example.com")

    assert caught.value.field == "email"
    assert found == ada
    assert found is not None
    assert found.email == "äda.straße@example.com"  # stored as given
    assert (await row_counts(darasa_db))["users"] == 1


async def test_create_user_with_a_taken_id_conflicts(darasa_db: Database, user: User):
    with pytest.raises(ConflictError) as caught:
        await darasa_db.users.create(UserCreate(id=user.id, email="new@example.com", name="New"))

    assert caught.value.field == "id"
    assert await darasa_db.users.get(user.id) == user


async def test_upsert_inserts_a_user_that_does_not_exist(darasa_db: Database):
    upserted = await darasa_db.users.upsert(
        UserUpsert(id="user_new", email="new@example.com", name="New")
    )

    assert upserted.id == "user_new"
    assert await darasa_db.users.get_by_email("new@example.com") == upserted


async def test_upsert_by_id_updates_name_email_and_image_url(darasa_db: Database):
    first = await darasa_db.users.create(
        UserCreate(id="user_1", email="old@example.com", name="Old", password_hash="keep-me")
    )

    synced = await darasa_db.users.upsert(
        UserUpsert(
            id="user_1", email="new@example.com", name="New", image_url="https://img.example/n"
        )
    )

    assert (synced.email, synced.name, synced.image_url) == (
        "new@example.com",
        "New",
        "https://img.example/n",
    )
    assert synced.password_hash == "keep-me"  # the provider's sync does not touch it
    assert synced.created_at == first.created_at
    assert synced.updated_at > first.updated_at
    assert (await row_counts(darasa_db))["users"] == 1
    assert await darasa_db.users.get_by_email("old@example.com") is None


async def test_upsert_may_change_the_case_of_the_users_own_email(darasa_db: Database, user: User):
    synced = await darasa_db.users.upsert(
        UserUpsert(id=user.id, email="Alice@Example.com", name=user.name)
    )

    assert synced.email == "Alice@Example.com"
    assert await darasa_db.users.get_by_email("alice@example.com") == synced


async def test_concurrent_upserts_of_one_new_id_make_one_user(darasa_db: Database):
    data = UserUpsert(id="user_race", email="race@example.com", name="Racer")

    results = await asyncio.gather(*(darasa_db.users.upsert(data) for _ in range(10)))

    assert {r.id for r in results} == {"user_race"}
    assert (await row_counts(darasa_db))["users"] == 1


async def test_concurrent_creates_with_one_email_in_any_case_let_exactly_one_win(
    darasa_db: Database,
):
    emails = ["race@example.com", "RACE@example.com", "Race@Example.COM", "race@EXAMPLE.com"]

    results = await asyncio.gather(
        *(darasa_db.users.create(UserCreate(email=e, name="R")) for e in emails),
        return_exceptions=True,
    )

    assert sum(isinstance(r, User) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 3
    assert (await row_counts(darasa_db))["users"] == 1


async def test_upsert_with_another_users_email_conflicts(
    darasa_db: Database, user: User, other_user: User
):
    with pytest.raises(ConflictError) as caught:
        await darasa_db.users.upsert(
            UserUpsert(id=other_user.id, email="Alice@EXAMPLE.com", name="Bob")
        )

    assert caught.value.field == "email"
    assert await darasa_db.users.get(other_user.id) == other_user


async def test_upsert_of_a_new_id_with_a_taken_email_conflicts(darasa_db: Database, user: User):
    with pytest.raises(ConflictError):
        await darasa_db.users.upsert(UserUpsert(id="user_x", email=user.email, name="X"))

    assert await darasa_db.users.get("user_x") is None


async def test_get_returns_none_for_a_missing_user(darasa_db: Database, user: User):
    assert await darasa_db.users.get("user_nobody") is None


async def test_get_by_email_ignores_case(darasa_db: Database, user: User):
    assert await darasa_db.users.get_by_email("ALICE@example.COM") == user


async def test_get_by_email_returns_none_for_an_unknown_email(darasa_db: Database, user: User):
    assert await darasa_db.users.get_by_email("nobody@example.com") is None


async def test_update_writes_only_the_given_fields_and_moves_updated_at(
    darasa_db: Database, user: User
):
    updated = await darasa_db.users.update(user.id, UserUpdate(name="Alice Liddell"))

    assert updated.name == "Alice Liddell"
    assert (updated.email, updated.image_url) == (user.email, user.image_url)
    assert updated.created_at == user.created_at
    assert updated.updated_at > user.updated_at
    assert await darasa_db.users.get(user.id) == updated


async def test_update_can_clear_a_nullable_field(darasa_db: Database):
    user = await darasa_db.users.create(
        UserCreate(email="a@example.com", name="A", image_url="https://img.example/a")
    )

    updated = await darasa_db.users.update(user.id, UserUpdate(image_url=None))

    assert updated.image_url is None


async def test_update_of_a_missing_user_raises_not_found(darasa_db: Database, user: User):
    with pytest.raises(NotFoundError):
        await darasa_db.users.update("user_nobody", UserUpdate(name="Ghost"))

    assert await darasa_db.users.get("user_nobody") is None


async def test_update_may_change_the_case_of_the_users_own_email(darasa_db: Database, user: User):
    updated = await darasa_db.users.update(user.id, UserUpdate(email="ALICE@example.com"))

    assert updated.email == "ALICE@example.com"


async def test_update_to_another_users_email_conflicts(
    darasa_db: Database, user: User, other_user: User
):
    with pytest.raises(ConflictError) as caught:
        await darasa_db.users.update(other_user.id, UserUpdate(email="ALICE@example.com"))

    assert caught.value.field == "email"
    assert await darasa_db.users.get(other_user.id) == other_user


async def test_delete_removes_the_user_then_reports_false(darasa_db: Database, user: User):
    assert await darasa_db.users.delete(user.id) is True
    assert await darasa_db.users.get(user.id) is None
    assert await darasa_db.users.delete(user.id) is False


async def test_delete_of_an_unknown_user_returns_false_and_keeps_others(
    darasa_db: Database, user: User
):
    assert await darasa_db.users.delete("user_nobody") is False
    assert await darasa_db.users.get(user.id) == user
