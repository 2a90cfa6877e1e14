"""Field types shared by the DTOs: checked text, identifiers, embeddings and JSON."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeAlias

import numpy as np
from email_validator import EmailNotValidError, validate_email
from numpy.typing import NDArray
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from darasa_db.models.document import EMBEDDING_DIMENSIONS

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "Email",
    "Embedding",
    "EmbeddingInput",
    "InputModel",
    "JsonObject",
    "ReadModel",
    "Text1M",
    "Text10K",
    "Text50",
    "Text100K",
    "Text200",
    "Text255",
    "Text500",
    "Text1000",
    "UpdateModel",
    "check_text",
    "reject_null",
    "validate_embedding",
    "validate_json_object",
]

MAX_JSON_DEPTH = 32
"""How deeply JSON values (document metadata) may nest."""

MAX_JSON_INT_DIGITS = 4300
"""The most digits an integer inside a JSON value may have.

Python refuses to convert longer integers to and from text (`sys.set_int_max_str_digits`),
so a longer one could be neither written as JSON nor read back. A lower limit set in this
process is respected too.
"""


def check_text(value: str) -> str:
    """Refuse NUL characters and lone surrogates, which PostgreSQL cannot store."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (PostgreSQL cannot store them)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "must be valid Unicode (lone surrogate characters cannot be stored)"
        ) from None
    return value


# Non-empty text without NUL or lone surrogates, bounded to the column's purpose.
Text50: TypeAlias = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(check_text)]
Text200: TypeAlias = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text)]
Text255: TypeAlias = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(check_text)]
Text500: TypeAlias = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(check_text)]
Text1000: TypeAlias = Annotated[
    str, Field(min_length=1, max_length=1000), AfterValidator(check_text)
]
Text10K: TypeAlias = Annotated[
    str, Field(min_length=1, max_length=10_000), AfterValidator(check_text)
]
Text100K: TypeAlias = Annotated[
    str, Field(min_length=1, max_length=100_000), AfterValidator(check_text)
]
Text1M: TypeAlias = Annotated[
    str, Field(min_length=1, max_length=1_000_000), AfterValidator(check_text)
]


def _check_email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return value  # stored exactly as given; uniqueness is case-insensitive in the database


Email = Annotated[
    str, Field(max_length=320), AfterValidator(check_text), AfterValidator(_check_email)
]


def _to_list(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and pgvector's Vector
    if callable(tolist) and not isinstance(value, list | tuple):
        return tolist()
    to_list = getattr(value, "to_list", None)
    if callable(to_list) and not isinstance(value, list | tuple):
        return to_list()
    return value


_FLOAT32_MAX = 3.4028234663852886e38  # pgvector stores float32: larger values become infinite
FiniteFloat = Annotated[
    float, Field(allow_inf_nan=False, strict=False, ge=-_FLOAT32_MAX, le=_FLOAT32_MAX)
]


def _not_all_zero(value: tuple[float, ...]) -> tuple[float, ...]:
    if not any(value):
        raise ValueError("must not be all zeros (its cosine similarity to anything is undefined)")
    return value


EmbeddingInput: TypeAlias = Sequence[float] | NDArray[np.floating[Any]]
"""What an embedding may be given as: a list or tuple of floats, or a 1-d numpy float array."""

Embedding: TypeAlias = Annotated[
    tuple[FiniteFloat, ...],
    BeforeValidator(_to_list),
    Field(min_length=EMBEDDING_DIMENSIONS, max_length=EMBEDDING_DIMENSIONS),
    AfterValidator(_not_all_zero),
]
"""Exactly 1536 finite floats (a list, tuple or numpy array)."""


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        digits = _max_int_digits()
        if value.bit_length() > 3 * digits and abs(value) >= 10**digits:  # 2**3d < 10**d
            raise ValueError(
                f"holds an integer of more than {digits} digits, which cannot be stored as JSON "
                "and read back"
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must not contain NaN or infinite numbers (not valid JSON)")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            check_text(key)
            _check_json(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)
    else:
        raise ValueError(f"holds a {type(value).__name__}, which is not JSON")


def _max_int_digits() -> int:
    configured = sys.get_int_max_str_digits()  # 0 means unlimited in this process
    return min(configured, MAX_JSON_INT_DIGITS) if configured else MAX_JSON_INT_DIGITS


def _json_object(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError("must be a JSON object (a dict)")
    _check_json(value)
    return dict(value)


JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object)]
"""A JSON object: string keys, finite numbers, integers of at most 4300 digits, no NUL, at
most 32 levels deep."""

_EMBEDDING = TypeAdapter(Embedding, config=ConfigDict(title="embedding"))
_JSON_OBJECT = TypeAdapter(JsonObject, config=ConfigDict(title="metadata"))


def validate_embedding(value: EmbeddingInput) -> tuple[float, ...]:
    """`value` as a valid embedding; a `ValidationError` titled `embedding` otherwise."""
    return _EMBEDDING.validate_python(value)


def validate_json_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` as a valid JSON object; a `ValidationError` titled `metadata` otherwise."""
    return _JSON_OBJECT.validate_python(value)


class ReadModel(BaseModel):
    """Base of the frozen read models built from database rows."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class InputModel(BaseModel):
    """Base of the create/update inputs: validated before any SQL runs; unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


def reject_null(value: Any) -> Any:
    """Field validator of update fields whose column is NOT NULL: an explicit None is refused."""
    if value is None:
        raise ValueError("cannot be null (leave the field out to keep its value)")
    return value


class UpdateModel(InputModel):
    """An update: every field optional, at least one set."""

    @model_validator(mode="after")
    def _check_changes(self) -> UpdateModel:
        if not self.model_fields_set:
            raise ValueError("an update must set at least one field")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields that were set, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}
