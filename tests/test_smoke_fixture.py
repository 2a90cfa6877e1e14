from darasa_db.schemas import UserUpsert


async def test_fixture_gives_a_migrated_database(darasa_db):
    user = await darasa_db.users.upsert(UserUpsert(id="u1", email="a@b.co", name="Ada"))
    assert (await darasa_db.users.get("u1")) == user
