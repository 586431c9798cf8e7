"""What one `Database` knows about its schema, and how it forgets it.

`ReflectionState` is the collaborator behind ``db.automap()``, ``db.model``,
``db.table``, ``db.get_table()``, ``db.get_model()``, ``db.inspector`` and
``db.refresh_schema()``: the automapped models (a `DatabaseMapper`, with its
`DatabaseModelCache`), the options of the last automap (so models dropped by
a refresh are rebuilt alike), the tables reflected one at a time by
``get_table`` and the cached ``Inspector``. Every change is made under one
lock, so threads sharing a `Database` see one mapper or the next, never half
of one.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, MetaData, Table, inspect
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.exc import NoSuchTableError

from .._connectable import HasEngine
from ..errors import ModelNotFoundError
from .automap import DatabaseMapper, ViewSpec
from .cache import DatabaseModelCache
from .lookup import table_not_found
from .naming import model_key, parse_table_name

__all__ = ["ReflectionState"]


def checked_model(cls: type, schema: str, table: str) -> type:
    """``cls`` if it maps ``schema.table``; model keys of two tables can collide.

    (Public ``geology_formation`` and ``geology.formation`` share a key.)
    """
    mapped: Table | None = getattr(cls, "__table__", None)
    if mapped is not None and ((mapped.schema or "public"), mapped.name) != (
        schema,
        table,
    ):
        raise ModelNotFoundError(
            f"The model for key {model_key(schema, table)!r} maps "
            f"{mapped.schema or 'public'}.{mapped.name}, not {schema}.{table} (their "
            "model keys collide); use get_table() for the other one."
        )
    return cls


class ReflectionState:
    """The models, tables and inspector of one database (see the module docstring).

    Parameters:
        db: the `Database` (given to each `DatabaseMapper`).
    """

    def __init__(self, db: HasEngine) -> None:
        # Not a strong reference: a dropped Database is freed (and its
        # session connections closed) at once, not at a garbage collection.
        self._db = weakref.ref(db)
        self.engine: Engine = db.engine
        self.mapper: DatabaseMapper | None = None
        self.model_cache: DatabaseModelCache | None = None
        self.inspector: Inspector | None = None
        self.table_cache: dict[tuple[str, str], Table] = {}
        self._table_metadata = MetaData()
        self._automap_options: dict[str, Any] = {}
        self._lock = threading.RLock()

    def get_inspector(self) -> Inspector:
        """A SQLAlchemy ``Inspector``, cached until `refresh`."""
        if self.inspector is None:
            self.inspector = inspect(self.engine)
        return self.inspector

    def automap(
        self,
        schemas: Iterable[str] | str | None = None,
        *,
        use_cache: bool = True,
        cache: DatabaseModelCache | str | os.PathLike[str] | None = None,
        views: ViewSpec | None = None,
        lazy: bool = True,
    ) -> None:
        """Build a new `DatabaseMapper` over ``schemas`` and make it the mapper (`Database.automap`)."""
        if cache is not None:
            self.model_cache = (
                cache
                if isinstance(cache, DatabaseModelCache)
                else DatabaseModelCache(cache)
            )
        db = self._db()
        if db is None:  # pragma: no cover - only reachable through the Database
            raise ReferenceError("the Database was dropped")
        mapper = DatabaseMapper(db, cache=self.model_cache, lazy=lazy)
        mapper.reflect_database(schemas, use_cache=use_cache, views=views)
        with self._lock:
            self.mapper = mapper
            self._automap_options = {"schemas": schemas, "views": views, "lazy": lazy}

    def ensure_mapper(self) -> DatabaseMapper:
        """The mapper, automapped with the last options first if there is none."""
        if self.mapper is None:
            self.automap(**self._automap_options)
        assert self.mapper is not None
        return self.mapper

    def refresh(self, *, automap: bool | None = None) -> None:
        """Forget the inspector, the tables and the models (`Database.refresh_schema`)."""
        with self._lock:
            self.inspector = None
            self.table_cache.clear()
            self._table_metadata = MetaData()
            had_models = self.mapper is not None
            if self.mapper is not None:
                self._automap_options = {
                    "schemas": sorted(self.mapper.reflected_schemas),
                    "views": self.mapper.views or None,
                    "lazy": self.mapper.lazy,
                }
            self.mapper = None
        if automap or (automap is None and had_models):
            self.automap(**self._automap_options)

    def get_table(self, name: str | tuple[str, str], schema: str | None) -> Table:
        """The mapper's table, or the table reflected alone and cached (`Database.get_table`)."""
        sch, tbl = parse_table_name(name, schema)
        mapper = self.mapper
        if mapper is not None:
            key = tbl if sch == "public" else f"{sch}.{tbl}"
            found = mapper.reflected_table(key)
            if found is not None:
                return found
        with self._lock:
            cached = self.table_cache.get((sch, tbl))
            if cached is None:
                try:
                    cached = Table(
                        tbl,
                        self._table_metadata,
                        schema=None if sch == "public" else sch,
                        autoload_with=self.engine,
                        resolve_fks=False,
                    )
                except NoSuchTableError as err:
                    raise table_not_found(self.engine, sch, tbl) from err
                self.table_cache[(sch, tbl)] = cached
            return cached

    def get_model(
        self, name: str | tuple[str, str], schema: str | None, automap: bool
    ) -> type:
        """The mapped class, reflecting its schema if needed (`Database.get_model`)."""
        sch, tbl = parse_table_name(name, schema)
        key = model_key(sch, tbl)
        if self.mapper is not None and key in self.mapper.models:
            return checked_model(self.mapper.models[key], sch, tbl)
        if not automap:
            raise ModelNotFoundError(
                f"No ORM model found for {sch}.{tbl}. Call db.automap() first, or use "
                "get_table() to reflect the table without mapping it."
            )
        if self.mapper is None:
            # Another schema adds to the default ones, never replaces them.
            wanted = self._automap_options.get("schemas") or ["public"]
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            schemas = list(dict.fromkeys([*wanted, sch]))
            self.automap(**{**self._automap_options, "schemas": schemas})
        elif sch not in self.mapper.reflected_schemas:
            self.mapper.reflect_schema(sch)
        assert self.mapper is not None
        found = self.mapper.models.get(key)
        if found is None:
            raise self.mapper.model_not_found(sch, tbl)
        return checked_model(found, sch, tbl)
