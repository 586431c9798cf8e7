"""`ModelHelperMixins`: what every automapped model class can do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Table, inspect

__all__ = ["ModelHelperMixins", "primary_key"]

_NONE = "\u2013"  # en dash: how __repr__ shows a primary key that is still None


class ModelHelperMixins:
    """Helpers mixed into every model a `DatabaseMapper` creates.

    This includes models built from a model cache (upstream dropped the mixin
    for those). ``loaded_from_cache`` is True on the classes of a mapper whose
    table definitions came from its `DatabaseModelCache`.
    """

    # No class-level annotations here: declarative would evaluate them for
    # every mapped class (measurably slower automap).
    loaded_from_cache = False

    if TYPE_CHECKING:
        __table__: ClassVar[Table]

    def to_dict(self) -> dict[str, Any]:
        """Return ``{column key: value}`` for every column of the model's table."""
        return {col.key: getattr(self, col.key) for col in self.__table__.columns}

    def __repr__(self) -> str:
        """``ClassName(pk: value, ...)``, with an en dash for a None key value."""
        parts = []
        for key, value in primary_key(self).items():
            parts.append(f"{key}: {_NONE if value is None else value}")
        return f"{type(self).__name__}({', '.join(parts)})"


def primary_key(instance: object) -> dict[str, Any]:
    """Return ``{attribute name: value}`` for the primary key of a mapped instance.

    Parameters:
        instance: an instance of a mapped class.
    """
    mapper = inspect(instance).mapper
    out: dict[str, Any] = {}
    for column in mapper.primary_key:
        key = mapper.get_property_by_column(column).key
        out[key] = getattr(instance, key)
    return out
