from darasa_db.schemas import UserCreate


async def test_probe(darasa_db):
    async with darasa_db.connection() as conn:
        cur = await conn.execute("SELECT datcollate, datctype, lower('ÄDA') FROM pg_database WHERE datname = current_database()")
        print(await cur.fetchone())
    a = await darasa_db.users.create(UserCreate(email="ÄDA@example.com", name="A"))
    try:
        b = await darasa_db.users.create(UserCreate(email="äda@example.com", name="B"))
        print("NO CONFLICT", a.id, b.id)
    except Exception as e:
        print("conflict", type(e))
    print(await darasa_db.users.get_by_email("äda@example.com"))
