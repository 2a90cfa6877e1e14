"""The cache notice's payload is exactly the compact JSON `json.dumps` writes, whatever the tags
hold: it is built from C calls (`encode_basestring_ascii`) on every write, and other processes
(earlier releases among them) parse it with `json.loads`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from darasa_db import Database, DatabaseSettings
from darasa_db.cache.invalidator import _NOTIFY_LIMIT, Invalidator

CORPUS = Path(__file__).parents[1] / "data" / "hostile_inputs.txt"


def _texts() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    values: list[Any] = [json.loads(line) for line in lines if line.strip() and line[0] != "#"]
    return [value for value in values if isinstance(value, str)]


def _invalidator() -> Invalidator:
    db = Database(DatabaseSettings(url="postgresql://u@localhost/db"), cache=None)
    return db._invalidator  # (nothing connects: the payload is built in memory)


def _compact(sender: str, tags: Any) -> str:
    return json.dumps([sender, tags], separators=(",", ":"))


@pytest.mark.parametrize(
    "tags",
    [
        (),
        ("user:u1:conversations", "id:8d0c1f3e-0000-4000-8000-000000000001:conversations"),
        ('user:"quoted"\\slash:x', "user:\u2028\u0000\x1f\x7f:x", "user:ü e\u0301 \U0001f600:x"),
        ("user:\ud800 lone:x",),  # a lone surrogate is escaped, as json.dumps does
    ],
)
def test_payload_is_what_json_dumps_writes(tags: tuple[str, ...]) -> None:
    invalidator = _invalidator()
    payload = invalidator.payload(tags)
    assert payload == _compact(invalidator.sender_id, list(tags))
    assert payload.isascii()
    assert json.loads(payload) == [invalidator.sender_id, list(tags)]


def test_payload_of_every_hostile_text_is_what_json_dumps_writes() -> None:
    invalidator = _invalidator()
    texts = _texts()
    assert len(texts) > 20  # the corpus was read
    for text in texts:
        tags = (f"user:{text}:conversations", f"id:{text}:conversations")
        assert invalidator.payload(tags) == _compact(invalidator.sender_id, list(tags)), text


def test_a_payload_past_notifys_limit_says_clear_everything() -> None:
    invalidator = _invalidator()
    fits = ("x" * (_NOTIFY_LIMIT - 60),)
    assert json.loads(invalidator.payload(fits)) == [invalidator.sender_id, list(fits)]
    escaped = ("\u00fc" * (_NOTIFY_LIMIT // 6 + 1),)  # short in characters, long once escaped
    assert json.loads(invalidator.payload(escaped)) == [invalidator.sender_id, None]
    assert json.loads(invalidator.payload(("x" * _NOTIFY_LIMIT,))) == [invalidator.sender_id, None]
