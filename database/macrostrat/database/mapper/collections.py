"""`ModelCollection` and `TableCollection`: mapped classes and tables by key."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast, overload

from sqlalchemy import Table

from .lookup import missing_name
from .naming import classname_for_table

if TYPE_CHECKING:
    from .lazy import LazyModels

__all__ = ["ModelCollection", "TableCollection"]


class ModelCollection:
    """Mapped model classes by key, reachable as ``coll.key`` or ``coll["key"]``.

    It behaves as a read-only mapping from key to class: ``[]`` (KeyError when
    missing), ``in`` (a key, or a class), ``len``, ``keys()``, ``values()``,
    ``items()`` and ``get()``. Iterating yields the **classes**, as upstream
    did (use ``keys()`` for the names). A missing attribute raises
    ``AttributeError`` naming the schemas searched and the closest keys.

    A collection of a lazy `DatabaseMapper` knows every key from the start and
    maps a class when it is first looked up (`macrostrat.database.mapper.lazy`);
    ``keys()``, ``len()`` and ``in`` with a key map nothing, while iterating,
    ``values()`` and ``items()`` map every model.

    Parameters:
        models: classes to register under their model keys, or a mapping of
            key to class.
        schemas: the schemas the models come from, named when a key is
            missing (a live collection: the mapper's reflected schemas).
    """

    def __init__(
        self,
        models: Mapping[str, type] | Iterable[type] | None = None,
        *,
        schemas: Collection[str] | None = None,
    ) -> None:
        self._models: dict[str, type] = {}
        self._lazy: LazyModels | None = None
        self._schemas = schemas
        if isinstance(models, Mapping):
            self._models.update(models)
        elif models is not None:
            self.register(*models)

    def register(self, *classes: type) -> None:
        """Add mapped classes under the model key of their table."""
        for cls in classes:
            self._models[classname_for_table(cls.__table__)] = cls  # type: ignore[attr-defined]

    def add(self, key: str, value: type) -> None:
        """Add ``value`` under ``key``."""
        self._models[key] = value

    def attach(self, lazy: LazyModels | None) -> None:
        """Serve the keys of ``lazy`` too, mapping each class on first lookup."""
        self._lazy = lazy

    def _lookup(self, key: str) -> type | None:
        found = self._models.get(key)
        if found is None and self._lazy is not None and key in self._lazy.keys:
            found = self._models[key] = self._lazy.model(key)
        return found

    def __getattr__(self, name: str) -> type:
        if name.startswith("__") or name in ("_models", "_lazy", "_schemas"):
            raise AttributeError(name)
        found = self._lookup(name)
        if found is None:
            raise AttributeError(self._missing("model", name))
        return found

    def _missing(self, kind: str, name: str) -> str:
        """``no model named 'x' in schema 'public' (did you mean: …?)``."""
        return missing_name(kind, name, self.keys(), self._schemas)

    def __getitem__(self, key: str) -> type:
        found = self._lookup(key) if isinstance(key, str) else None
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._models or (
                self._lazy is not None and item in self._lazy.keys
            )
        if any(item is cls for cls in self._models.values()):
            return True
        return self._lazy is not None and self._lazy.owns(item)

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self) -> Iterator[type]:
        return iter(self.values())

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.keys()))

    @overload
    def get(self, key: str) -> type | None: ...
    @overload
    def get(self, key: str, default: Any) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any:
        """The class under ``key``, or ``default``."""
        found = self._lookup(key)
        return default if found is None else found

    def keys(self) -> list[str]:
        """The model keys, in mapping order."""
        if self._lazy is None:
            return list(self._models)
        return list(dict.fromkeys([*self._lazy.keys, *self._models]))

    def values(self) -> list[type]:
        """The classes (a lazy collection maps every model first)."""
        if self._lazy is not None:
            self._lazy.map_all()
        return [self[key] for key in self.keys()]

    def items(self) -> list[tuple[str, type]]:
        """``(key, class)`` pairs (a lazy collection maps every model first)."""
        return list(zip(self.keys(), self.values(), strict=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.keys())})"


def _table(model: Any) -> Table:
    """The ``Table`` of a mapped class (its ``__table__``, set when it was mapped)."""
    return cast(Table, model.__table__)


class TableCollection:
    """The tables of the models in a `ModelCollection`, by the same keys.

    A live view: it follows the model collection. Same mapping behaviour as
    `ModelCollection` (``[]``, ``in`` with a key or a ``Table``, ``len``,
    ``keys()``, ``values()``, ``items()``, ``get()``, attribute access);
    iterating yields the ``Table`` objects.

    Parameters:
        models: the model collection to follow.
    """

    def __init__(self, models: ModelCollection) -> None:
        self._models = models

    def __getattr__(self, name: str) -> Table:
        if name.startswith("__") or name == "_models":
            raise AttributeError(name)
        model = self._models.get(name)
        if model is None:
            raise AttributeError(self._models._missing("table", name))
        return _table(model)

    def __getitem__(self, key: str) -> Table:
        return _table(self._models[key])

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._models
        if isinstance(item, Table):
            # Only the model keyed like the table can hold it: map that one only.
            model = self._models.get(classname_for_table(item))
            if model is not None and model.__table__ is item:  # type: ignore[attr-defined]
                return True
            return any(
                item is cls.__table__  # type: ignore[attr-defined]
                for cls in self._models._models.values()
            )
        return False

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[Table]:
        return iter(self.values())

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._models.keys()))

    def get(self, key: str, default: Any = None) -> Any:
        """The table under ``key``, or ``default``."""
        model = self._models.get(key)
        return default if model is None else model.__table__  # type: ignore[attr-defined]

    def keys(self) -> list[str]:
        """The model keys."""
        return self._models.keys()

    def values(self) -> list[Table]:
        """The tables."""
        return [cls.__table__ for cls in self._models.values()]  # type: ignore[attr-defined]

    def items(self) -> list[tuple[str, Table]]:
        """``(key, table)`` pairs."""
        return [(k, cls.__table__) for k, cls in self._models.items()]  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._models.keys())})"
