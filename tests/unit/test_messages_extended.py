"""`Messages.extended`: held messages followed by an append's, still a tuple of `Message`.

An append whose `Database` holds the messages it started from returns them `.extended(tail)`
without decoding them; whatever the caller does with the result must see exactly the tuple of
all the messages. `_items` is None while a `Messages` is undecoded (internal, read here only
to prove that a step did not decode).
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial

from test_messages import _conversation

from darasa_db.schemas import Conversation, Message
from darasa_db.schemas.conversation import Messages

HELD = (Message(role="system", content="be brief"), Message(role="user", content="hi"))
TAIL = (Message(role="assistant", content="hello"), Message(role="user", content='é\u2603\n"'))
ALL = HELD + TAIL


def _decode(text: str) -> tuple[Message, ...]:
    return tuple(Message(**item) for item in json.loads(text))


def _v(n: int) -> uuid.UUID:
    """A stored messages version (random in the database; any UUID here)."""
    return uuid.UUID(int=n)


def _lazy(messages: tuple[Message, ...] = HELD, version: uuid.UUID | None = None) -> Messages:
    text = json.dumps([m.model_dump() for m in messages])
    return Messages.decoded_later(text, _decode, version=version or _v(1))


def _extended() -> Messages:
    return _lazy().extended(TAIL, version=_v(2))


def test_extending_decodes_nothing_and_keeps_the_new_version():
    held = _lazy()
    extended = held.extended(TAIL, version=_v(7))

    assert extended._items is None  # internal: still undecoded
    assert held._items is None
    assert extended._version == _v(7)
    assert held._version == _v(1)
    assert extended.as_tuple() == ALL
    assert held.as_tuple() == HELD  # the held messages are not changed by the extension


def test_extended_messages_equal_the_tuple_and_the_decoded_messages():
    assert _extended() == ALL
    assert ALL == _extended()  # noqa: SIM300 - the tuple on the left, on purpose
    assert _extended() == Messages(ALL)
    assert Messages(ALL) == _extended()
    assert _extended() == _lazy(ALL)  # as a read of the stored JSON gives them
    assert _extended() == _extended()  # both undecoded: same source, same tail
    assert _extended() != HELD
    assert _extended() != _lazy()
    assert _extended() != list(ALL)
    assert (_extended() != ALL) is False


def test_extensions_of_the_same_messages_by_different_tails_differ():
    held = _lazy()
    one = held.extended(TAIL[:1], version=_v(2))
    other = held.extended(TAIL[1:], version=_v(2))

    assert one != other  # same source, different tails: must not be taken as the same JSON
    assert one == HELD + TAIL[:1]
    assert other == HELD + TAIL[1:]
    assert held.extended((), version=_v(2)) == held


def test_extended_messages_hash_like_the_tuple():
    assert hash(_extended()) == hash(ALL)
    assert len({_extended(), Messages(ALL), ALL}) == 1


def test_extended_messages_measure_index_slice_and_iterate_as_a_tuple():
    extended = _extended()

    assert len(_extended()) == 4
    assert extended[0] == ALL[0]
    assert extended[-1] == TAIL[-1]
    assert extended[1:3] == ALL[1:3]
    assert isinstance(extended[1:3], tuple)
    assert extended[::-1] == ALL[::-1]
    assert list(_extended()) == list(ALL)
    assert list(reversed(_extended())) == list(reversed(ALL))
    assert TAIL[0] in _extended()
    assert _extended().index(TAIL[1]) == 3
    assert _extended().count(HELD[0]) == 1
    assert _extended() + (HELD[0],) == (*ALL, HELD[0])  # noqa: RUF005
    assert (HELD[0],) + _extended() == (HELD[0], *ALL)  # noqa: RUF005
    assert bool(_extended())
    assert not Messages().extended((), version=_v(1))
    assert repr(_extended()) == repr(ALL)


def test_extended_messages_survive_a_pickle_round_trip():
    restored = pickle.loads(pickle.dumps(_extended()))  # pickled undecoded

    assert type(restored) is Messages
    assert restored == ALL
    assert restored._items == ALL  # internal: it arrives decoded, with no decoder to pickle
    assert pickle.loads(pickle.dumps(_lazy().extended((), version=_v(3)))) == HELD
    assert copy.copy(_extended()) == ALL
    assert copy.deepcopy(_extended()) == ALL


def test_extending_decoded_messages_gives_the_tuple_of_all():
    decoded = _lazy()
    assert decoded.as_tuple() == HELD  # decoded before the extension

    extended = decoded.extended(TAIL, version=_v(2))

    assert extended == ALL
    assert Messages(HELD).extended(TAIL, version=_v(2)) == ALL
    assert Messages().extended(TAIL, version=_v(2)) == TAIL
    again = extended.extended(TAIL[:1], version=_v(3))  # an extension of a decoded extension
    assert extended.as_tuple() == ALL
    assert again == (*ALL, TAIL[0])


def test_extending_an_extension_keeps_every_tail_in_order():
    first = _extended()
    second = first.extended(HELD, version=_v(3))

    assert second._items is None  # internal: extending an undecoded extension decodes nothing
    assert first._items is None
    assert second == ALL + HELD
    assert first == ALL  # the first extension is unchanged


def test_a_chain_of_3000_extensions_never_recurses():
    assert sys.getrecursionlimit() < 3000 * 2  # a recursive decoding would overflow here
    extended = _lazy()
    added = []
    for i in range(3000):
        message = Message(role="user", content=f"m{i}")
        added.append(message)
        extended = extended.extended((message,), version=_v(i + 2))

    assert extended._items is None  # internal: nothing was decoded along the chain
    assert len(extended) == 3002
    assert extended == HELD + tuple(added)
    assert hash(extended) == hash(HELD + tuple(added))
    assert pickle.loads(pickle.dumps(extended)) == extended


def test_a_chain_of_extensions_decoded_at_every_step_gives_the_same():
    lazy = decoded = _lazy()
    for i in range(300):
        message = (Message(role="assistant", content=str(i)),)
        lazy = lazy.extended(message, version=_v(i))
        decoded = decoded.extended(message, version=_v(i))
        decoded.as_tuple()  # decoded each time: the next extension starts from a tuple
    assert lazy == decoded
    assert len(lazy) == 302


def _together(calls: list[Callable[[], object]]) -> list[object]:
    """What each of `calls` returns, each run in a thread of its own, all started at once."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except BaseException as exc:  # collected: an exception in a thread is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def _read(messages: Messages) -> tuple[object, ...]:
    return messages.as_tuple(), len(messages), messages[-1]


def test_concurrent_decoding_from_threads_gives_one_result():
    def slow_decode(text: str) -> tuple[Message, ...]:
        time.sleep(0.001)  # let the other threads into the window between check and store
        return _decode(text)

    text = json.dumps([m.model_dump() for m in HELD])
    for round in range(30):
        extended = Messages.decoded_later(text, slow_decode, version=_v(1)).extended(
            TAIL, version=_v(2)
        )
        if round % 2:
            extended = extended.extended((), version=_v(3))  # a second level of extension too

        results = _together([partial(_read, extended)] * 8)

        assert results == [(ALL, 4, TAIL[-1])] * 8
        assert extended == ALL


def test_extending_while_other_threads_decode_the_same_messages():
    text = json.dumps([m.model_dump() for m in HELD])
    for _ in range(30):
        held = Messages.decoded_later(text, _decode, version=_v(1))

        results = _together([partial(held.extended, TAIL, version=_v(2)), held.as_tuple] * 3)

        assert results[0::2] == [ALL] * 3
        assert results[1::2] == [HELD] * 3
        assert held == HELD


def test_a_conversation_with_extended_messages_equals_and_dumps_as_the_decoded_one():
    extended, decoded = _conversation(_extended()), _conversation(list(ALL))

    assert extended.messages._items is None  # internal: validation kept it undecoded
    assert extended == decoded
    assert extended.model_dump() == decoded.model_dump()
    assert extended.model_dump_json() == decoded.model_dump_json()
    assert Conversation.model_validate_json(extended.model_dump_json()) == decoded
    assert pickle.loads(pickle.dumps(extended)) == decoded
    assert extended.model_copy(deep=True) == decoded
    assert Conversation.model_validate(extended.model_dump()) == decoded
