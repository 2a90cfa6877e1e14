import numpy as np
from integration.test_similarity_search import corpus, crowd_queries, WHALE, CALLER, SPARSE, Corpus  # noqa: F401


async def test_probe(corpus: Corpus):
    for user in (WHALE, CALLER, SPARSE):
        mine = corpus.rows_of(user)
        for qi, query in enumerate(crowd_queries(corpus, user)):
            for force in (False, True):
                async with corpus.db.transaction() as tx:
                    if force:
                        await tx.connection.execute("SET LOCAL enable_sort = off")
                    m = await tx.documents.similarity_search(query, user_id=user, limit=10)
                    approx = await tx.connection.execute(corpus.db.sql(__import__("darasa_db.repositories.documents", fromlist=["x"])._SEARCHES[(False, False, False)]), {"user_id": user, "query": np.asarray(query, dtype=np.float32), "limit": 10})
                    n_approx = len(await approx.fetchall())
                got = [x.document.id for x in m]
                exact = corpus.exact_top(query, mine, 10)
                sims = np.sort(corpus.cosine(query, mine))[::-1][:11]
                print(user, qi, force, "approx rows", n_approx, "recall", len(set(got) & set(exact)), "top1 ok", got[0] == exact[0], np.round(sims, 3))
