"""psycopg row factories that build DTOs from trusted rows without validating them again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from psycopg.rows import BaseRowFactory, RowMaker, no_result
from pydantic import BaseModel

__all__ = ["construct", "model_row"]

M = TypeVar("M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__


@cache
def _assembles(model: type[BaseModel]) -> bool:
    """True when `model_construct` would only fill `__dict__` and the fields set (no aliases,
    defaults to apply, extra fields, private attributes or post-init hook)."""
    return not (
        model.__pydantic_root_model__
        or model.__pydantic_post_init__
        or model.__private_attributes__
        or model.model_config.get("extra") == "allow"
        or any(f.alias or f.validation_alias for f in model.__pydantic_fields__.values())
    )


def construct(model: type[M], values: Mapping[str, Any]) -> M:
    """`model.model_construct(**values)`, assembled directly when `values` holds exactly the
    model's fields in order (rows and jsonb objects usually do)."""
    names = tuple(values)
    if names != tuple(model.__pydantic_fields__) or not _assembles(model):
        return model.model_construct(**values)
    obj = _new(model)
    _set(obj, "__dict__", dict(values))
    _set(obj, "__pydantic_fields_set__", set(names))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def model_row(model: type[M]) -> BaseRowFactory[M]:
    """Rows as `model` instances: `kwargs_row(model.model_construct)`, about 4 times cheaper.

    When the columns start with the model's fields in order (later ones, such as `notified`,
    are ignored) the instance is assembled directly; otherwise `model_construct` builds it.
    """
    fields = tuple(model.__pydantic_fields__)
    direct = _assembles(model)

    def factory(cursor: Any) -> RowMaker[M]:
        result = cursor.pgresult  # names straight from the result: `description` costs ~20 µs
        if result is None or not result.nfields:
            return no_result
        names = tuple(result.fname(i).decode() for i in range(result.nfields))
        if not (direct and names[: len(fields)] == fields):

            def constructed(values: Sequence[Any]) -> M:
                return model.model_construct(**dict(zip(names, values, strict=True)))

            return constructed

        def assembled(values: Sequence[Any]) -> M:
            obj = _new(model)
            _set(obj, "__dict__", dict(zip(fields, values, strict=False)))
            _set(obj, "__pydantic_fields_set__", set(fields))
            _set(obj, "__pydantic_extra__", None)
            _set(obj, "__pydantic_private__", None)
            return obj

        return assembled

    return factory
