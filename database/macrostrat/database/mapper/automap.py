"""`DatabaseMapper`: automapped ORM models for one `Database`.

Longer than 400 lines because `DatabaseMapper` keeps reflection, the cache,
views and both mapping modes (eager automap, lazy) consistent under one lock;
its helpers live in the sibling modules.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geoalchemy2  # noqa: F401  (registers the PostGIS types with reflection)
from sqlalchemy import Connection, Engine, MetaData, PrimaryKeyConstraint, Table
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.ext.automap import automap_base, generate_relationship
from sqlalchemy.orm import declarative_base

from .._connectable import HasEngine
from .._helpers import reflect_table
from ..errors import InvalidOptionError, ModelNotFoundError
from .base import ModelHelperMixins
from .cache import DatabaseModelCache, Header, catalog_fingerprint, paused_gc
from .catalog import ReflectedTables, TableIndex, TableInfo, TableSource
from .collections import ModelCollection, TableCollection
from .lazy import LazyMapper, LazyModelMeta, LazyModels, complete_on_construction
from .legacy import UpstreamMapperAttributes
from .lookup import closest, qualified_name, searched, table_not_found
from .naming import (
    RelationshipNamer,
    _classname_for_table,
    classname_for_table,
    model_key,
    parse_table_name,
)

__all__ = ["DatabaseMapper", "ViewSpec"]

log = logging.getLogger(__name__)

ViewSpec = Mapping[str, Sequence[str] | str]
"""Views to map: ``{"schema.view" or "view": primary key column(s)}``."""

_HOOKS = (
    "classname_for_table",
    "name_for_scalar_relationship",
    "name_for_collection_relationship",
    "generate_relationship",
)


def _sa_schema(schema: str) -> str | None:
    """Reflect ``public`` as the default schema (None), as upstream did."""
    return None if schema == "public" else schema


def _normalise_views(views: ViewSpec | None) -> dict[tuple[str, str], tuple[str, ...]]:
    """``{(schema, view): (pk columns...)}`` from a `ViewSpec`, checked."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for name, pk in (views or {}).items():
        cols = (pk,) if isinstance(pk, str) else tuple(pk)
        if not cols:
            raise InvalidOptionError(f"view {name!r}: primary_key must name a column")
        out[parse_table_name(name)] = cols
    return out


def _views_header(
    views: Mapping[tuple[str, str], tuple[str, ...]],
) -> dict[str, list[str]]:
    return {f"{s}.{v}": list(pk) for (s, v), pk in views.items()}


class DatabaseMapper(UpstreamMapperAttributes):
    """Automapped ORM models for one database, on a base of their own.

    Every mapper has its own automap base, ``MetaData`` and class registry, so
    models never leak between databases, and a new mapper (``db.automap()``
    again) builds new classes that reflect the current schema. Relationship
    and class names follow `macrostrat.database.mapper.naming`; every class
    has `ModelHelperMixins`. Tables without a primary key are not mapped
    unless given one with `map_view` (which also maps views).

    By default mapping is lazy (`macrostrat.database.mapper.lazy`): reflecting
    (or loading the cache) maps nothing, and each model is mapped, with all of
    its relationships, when it is first used; `map_all` maps everything. With
    ``lazy=False``, or when a hook is replaced, every table is mapped at once
    by SQLAlchemy's automap; tables reflected by a later call then only get
    relationships among themselves (automap never revisits mapped classes),
    while a lazy mapper adds them to the classes already mapped too.

    Parameters:
        db: the `Database` (or an ``Engine``) to reflect.
        cache: where to keep reflected definitions between runs (default: none).
        lazy: map models on first use (default: True unless a hook is given).
        **hooks: replacements for the automap hooks ``classname_for_table``,
            ``name_for_scalar_relationship``, ``name_for_collection_relationship``
            and ``generate_relationship`` (automap signatures).

    Raises:
        InvalidOptionError: an unknown hook name, or ``lazy=True`` with hooks.
    """

    automap_base: type[Any]

    def __init__(
        self,
        db: HasEngine | Engine,
        *,
        cache: DatabaseModelCache | None = None,
        lazy: bool | None = None,
        **hooks: Any,
    ) -> None:
        unknown = set(hooks) - set(_HOOKS)
        if unknown:
            raise InvalidOptionError(
                f"unknown DatabaseMapper option(s): {', '.join(sorted(unknown))} "
                f"(allowed: {', '.join(_HOOKS)})"
            )
        if lazy and hooks:
            raise InvalidOptionError(
                "lazy mapping uses the default naming hooks; pass lazy=False to "
                f"use {', '.join(sorted(hooks))}"
            )
        self.lazy = not hooks if lazy is None else lazy
        self.db = db
        self.engine: Engine = db if isinstance(db, Engine) else db.engine
        if cache is None:  # upstream set DatabaseMapper.automap_base to enable one
            cache = self._assigned_cache() or DatabaseModelCache()
        self.cache = cache
        self.namer = RelationshipNamer()
        self.reflection_kwargs: dict[str, Any] = {
            "classname_for_table": _classname_for_table,
            "name_for_scalar_relationship": self.namer.scalar,
            "name_for_collection_relationship": self.namer.collection,
            "generate_relationship": generate_relationship,
            **hooks,
        }
        self._lock = threading.RLock()
        self._reflected_schemas: set[str] = set()
        self._views: dict[tuple[str, str], tuple[str, ...]] = {}
        self._explicit: dict[str, type] = {}
        self._models = ModelCollection(schemas=self._reflected_schemas)
        self._tables = TableCollection(self._models)
        self._lazy: LazyModels | None = None
        self._source: TableSource = ReflectedTables(MetaData())
        self._new_base(self._source.metadata, loaded_from_cache=False)

    # -- public ------------------------------------------------------------

    @property
    def metadata(self) -> MetaData:
        """The reflected tables (a lazy mapper loads any still in the cache file)."""
        with self._lock:
            self._source.load_all()
        return self._metadata

    def reflected_table(self, key: str) -> Table | None:
        """The reflected table under ``MetaData`` key ``key``, or None.

        Unlike ``metadata.tables.get(key)``, loads only that table from a cache.
        """
        with self._lock:
            if key in self._metadata.tables:
                return self._metadata.tables[key]
            if self._lazy is not None and key in self._lazy.index:
                return self._source.table(key)
        return None

    def map_all(self) -> None:
        """Map every model now (a lazy mapper otherwise maps each on first use)."""
        if self._lazy is not None:
            self._lazy.map_all()

    @property
    def models(self) -> ModelCollection:
        """The mapped classes by model key."""
        return self._models

    @property
    def tables(self) -> TableCollection:
        """The tables of the mapped classes by model key."""
        return self._tables

    @property
    def reflected_schemas(self) -> frozenset[str]:
        """The schemas reflected so far (``"public"`` for the default schema)."""
        return frozenset(self._reflected_schemas)

    @property
    def loaded_from_cache(self) -> bool:
        """True when the table definitions came from the model cache."""
        return bool(self.automap_base.loaded_from_cache)

    @property
    def views(self) -> dict[str, tuple[str, ...]]:
        """Views mapped with an explicit primary key: ``{"schema.view": pk}``."""
        return {f"{s}.{v}": pk for (s, v), pk in self._views.items()}

    def reflect_database(
        self,
        schemas: Iterable[str] | str | None = None,
        use_cache: bool = True,
        *,
        views: ViewSpec | None = None,
    ) -> None:
        """Reflect ``schemas`` (default ``["public"]``) and map their tables.

        With a cache configured and ``use_cache``, a first call loads the table
        definitions from the cache when its header covers ``schemas`` and
        ``views`` and its catalog fingerprint matches the database; otherwise it
        reflects (all schemas first, then one mapping pass, so relationships
        between schemas are all created) and rewrites the cache. Tables that
        foreign keys reach in other schemas are reflected and mapped too.
        Schemas already reflected are skipped.

        Parameters:
            schemas: schema names; ``"public"`` is the default schema.
            use_cache: read the cache (it is written either way when configured).
            views: views (or key-less tables) to map with an explicit primary
                key, ``{"schema.view": ["col", ...]}``.
        """
        names = [schemas] if isinstance(schemas, str) else list(schemas or ["public"])
        wanted = list(dict.fromkeys(s or "public" for s in names))
        view_spec = _normalise_views(views)
        with self._lock, paused_gc():
            fresh = not self._reflected_schemas and not self._metadata.tables
            if (
                fresh
                and use_cache
                and self.cache.enabled
                and self._load_cache(wanted, view_spec)
            ):
                return
            self._reflect(wanted, view_spec)

    def reflect_schema(self, schema: str | None, use_cache: bool = True) -> None:
        """Reflect and map one more schema (see `reflect_database`)."""
        self.reflect_database([schema or "public"], use_cache=use_cache)

    def map_view(
        self,
        name: str | tuple[str, str],
        primary_key: Sequence[str] | str,
        *,
        schema: str | None = None,
    ) -> type:
        """Map a view (or a table without a primary key) and return its class.

        Only that relation is reflected. The class is keyed like any model
        (``schema_view``). Mapping it again with the same key returns the
        existing class.

        Parameters:
            name: ``"view"``, ``"schema.view"`` or ``(schema, view)``.
            primary_key: the column(s) that identify a row.
            schema: the schema, if not in ``name``.

        Raises:
            InvalidOptionError: no key columns, a column that does not exist, or
                the relation is already mapped with another key.
            sqlalchemy.exc.NoSuchTableError: no such view or table.
        """
        sch, view = parse_table_name(name, schema)
        cols = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key)
        if not cols:
            raise InvalidOptionError("map_view: primary_key must name a column")
        key = model_key(sch, view)
        with self._lock:
            self._source.load_all()
            existing = self._models.get(key)
            if existing is not None:
                table: Table = existing.__table__  # type: ignore[attr-defined]
                current = tuple(c.key for c in table.primary_key)
                if current != cols:
                    raise InvalidOptionError(
                        f"{sch}.{view} is already mapped with primary key {current}"
                    )
                return existing
            with self.engine.connect() as conn:
                table = self._view_table(conn, sch, view, cols)
            self._views[(sch, view)] = cols
            self._declare(table)
            self._prepare()
            return self._models[key]

    def register_models(self, *models: type) -> None:
        """Add hand-written mapped classes to `models` under their model keys."""
        for cls in models:
            self._explicit[classname_for_table(cls.__table__)] = cls  # type: ignore[attr-defined]
        self._models.register(*models)

    def automap_view(self, table_name: str, *column_args: Any, **kwargs: Any) -> type:
        """Deprecated: use `map_view`. Reflect a view with ``column_args`` and map it.

        ``column_args`` must declare the primary key columns (``Column(...,
        primary_key=True)``); ``schema=`` and other ``Table`` options go in kwargs.
        """
        warnings.warn(
            "DatabaseMapper.automap_view() is deprecated; use map_view(name, "
            "primary_key=[...])",
            DeprecationWarning,
            stacklevel=2,
        )
        schema = kwargs.pop("schema", None)
        with self._lock:
            self._source.load_all()
            table = Table(
                table_name,
                self._metadata,
                *column_args,
                schema=_sa_schema(schema or "public"),
                autoload_with=self.engine,
                extend_existing=True,
                resolve_fks=False,
                **kwargs,
            )
            self._declare(table)
            self._prepare()
            return self._models[classname_for_table(table)]

    def reflect_table(self, *args: Any, **kwargs: Any) -> Table:
        """Deprecated: use ``Database.get_table``. Reflect one table on its own."""
        warnings.warn(
            "DatabaseMapper.reflect_table() is deprecated; use Database.get_table()",
            DeprecationWarning,
            stacklevel=2,
        )
        return reflect_table(self.engine, *args, **kwargs)

    def model_not_found(self, schema: str, table: str) -> ModelNotFoundError:
        """The `ModelNotFoundError` for ``schema.table``: why, and what is close.

        Names the schemas searched; a table that was reflected but cannot be
        a model is said to lack a primary key (or to be a view, or an
        association table); otherwise the closest mapped names are suggested.

        Parameters:
            schema: the schema asked for (``"public"`` for the default one).
            table: the table asked for.
        """
        name = f"{schema}.{table}"
        head = f"No ORM model found for {name} after reflecting schema {schema!r}"
        reflected = self.reflected_table(table if schema == "public" else name)
        if reflected is not None:
            info = TableInfo.describe(reflected)
            if info.link:
                why = (
                    "it is an association table, mapped as the many-to-many "
                    "relationship between the tables it links"
                )
            else:
                why = (
                    "it has no primary key or is a view; map it with "
                    f"db.mapper.map_view({qualified_name(schema, table)!r}, "
                    "primary_key=[...])"
                )
            return ModelNotFoundError(f"{head}: {why}, or use get_table().")
        close = closest(qualified_name(schema, table), self._model_names())
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        return ModelNotFoundError(
            f"{head} (models come from {searched(self._reflected_schemas)}{hint}). "
            "Verify the table exists and has a primary key (map views with "
            "db.mapper.map_view()), or use get_table()."
        )

    def _model_names(self) -> list[str]:
        """Every model's table as get_model takes it (``table`` or ``schema.table``)."""
        if self._lazy is not None:
            infos = [self._lazy.index.infos[k] for k in self._lazy.keys.values()]
            return [qualified_name(i.schema or "public", i.name) for i in infos]
        tables = [cls.__table__ for cls in self._models._models.values()]  # type: ignore[attr-defined]
        return [qualified_name(t.schema or "public", t.name) for t in tables]

    # -- internals ---------------------------------------------------------

    def _new_base(self, metadata: MetaData, *, loaded_from_cache: bool) -> None:
        if self.lazy:
            base: Any = declarative_base(
                cls=ModelHelperMixins,
                metadata=metadata,
                name="AutomapModel",
                metaclass=LazyModelMeta,
                mapper=LazyMapper,
            )
            base.classes = self._models
            complete_on_construction(base)
        else:
            base = automap_base(
                cls=ModelHelperMixins, metadata=metadata, name="AutomapModel"
            )
        base.loaded_from_cache = loaded_from_cache
        base.builder = self.cache
        self._metadata = metadata
        self.automap_base = base

    def _load_cache(
        self, schemas: list[str], views: dict[tuple[str, str], tuple[str, ...]]
    ) -> bool:
        wanted_views = _views_header(views)

        def accept(header: Header) -> bool:
            if not set(schemas) <= set(header["schemas"]):
                return False
            return all(header["views"].get(k) == v for k, v in wanted_views.items())

        def verify(header: Header) -> bool:
            with self.engine.connect() as conn:
                live = catalog_fingerprint(conn, header["schemas"])
            return bool(live == header["fingerprint"])

        loaded = self.cache.load(accept, verify)
        if loaded is None:
            return False
        header, tables = loaded
        self._source = tables
        self._new_base(tables.metadata, loaded_from_cache=True)
        self._reflected_schemas.update(header["schemas"])
        for name, pk in header["views"].items():
            self._views[parse_table_name(name)] = tuple(pk)
        if self.lazy:
            self._start_lazy(tables.index)
        else:
            tables.load_all()
            self._prepare(tables.index)
        log.debug("loaded %d tables from cache %s", len(tables.index), self.cache)
        return True

    def _reflect(
        self, schemas: list[str], views: dict[tuple[str, str], tuple[str, ...]]
    ) -> None:
        todo = [s for s in schemas if s not in self._reflected_schemas]
        new_views = {k: v for k, v in views.items() if self._views.get(k) != v}
        if not todo and not new_views:
            return
        # Reflecting more needs every table present (extend, never duplicate).
        self._source.load_all()
        self._source = ReflectedTables(self._metadata)
        covered = self._reflected_schemas | set(schemas)
        with self.engine.connect() as conn:
            # Fingerprint first: DDL racing with reflection then only causes a miss.
            fingerprint = (
                catalog_fingerprint(conn, covered) if self.cache.enabled else ""
            )
            for schema in todo:
                self._metadata.reflect(
                    conn,
                    schema=_sa_schema(schema),
                    extend_existing=True,
                    autoload_replace=False,
                )
            for (sch, view), cols in new_views.items():
                table = self._view_table(conn, sch, view, cols)
                if not self.lazy:  # lazy: the index built below includes it
                    self._declare(table)
        self._reflected_schemas.update(todo)
        self._views.update(new_views)
        index = TableIndex.from_metadata(self._metadata)
        if self.lazy:
            self._start_lazy(index)
        else:
            self._prepare(index)
        if self.cache.enabled:
            header = self.cache.new_header(
                schemas=self._reflected_schemas,
                views=_views_header(self._views),
                fingerprint=fingerprint,
            )
            self.cache.save(header, self._metadata, index)

    def _start_lazy(self, index: TableIndex) -> None:
        """Serve models from ``index`` lazily (or refresh the index of a lazy mapper)."""
        if self._lazy is None:
            self._lazy = LazyModels(
                self.automap_base, index, self._source, self.namer, self._lock
            )
            self._models.attach(self._lazy)
        else:
            self._lazy.reindex(index, self._source)

    def _view_table(
        self, conn: Connection, schema: str, view: str, cols: tuple[str, ...]
    ) -> Table:
        """Reflect ``schema.view`` into our MetaData (if needed) and give it a key."""
        key = f"{schema}.{view}" if _sa_schema(schema) else view
        table = self._metadata.tables.get(key)
        if table is None:
            try:
                table = Table(
                    view,
                    self._metadata,
                    schema=_sa_schema(schema),
                    autoload_with=conn,
                    resolve_fks=False,
                )
            except NoSuchTableError as err:
                raise table_not_found(conn, schema, view) from err
        missing = [c for c in cols if c not in table.c]
        if missing:
            raise InvalidOptionError(
                f"{schema}.{view} has no column(s) {', '.join(missing)} "
                f"(columns: {', '.join(table.c.keys())})"
            )
        if tuple(table.primary_key.columns.keys()) != cols:
            table.append_constraint(PrimaryKeyConstraint(*(table.c[c] for c in cols)))
        return table

    def _declare(self, table: Table) -> None:
        """Make ``table`` (a view given a primary key) a model.

        Eager: declare a class on the base that the next prepare maps. Lazy:
        add the table to the index, so its model maps on first use.
        """
        if self.lazy:
            if self._lazy is None:
                self._start_lazy(TableIndex.from_metadata(self._metadata))
                return
            index = self._lazy.index
            index.add(TableInfo.describe(table, self._metadata.tables.keys()))
            self._lazy.reindex(index, self._source)
            return
        key = classname_for_table(table)
        if key in self._models or key in self._explicit:
            return
        cls = type(key, (self.automap_base,), {"__table__": table})
        self._explicit[key] = cls

    def _prepare(self, index: TableIndex | None = None) -> None:
        if self.lazy:
            return
        self.namer.reset(index if index is not None else self._metadata)
        self.automap_base.prepare(**self.reflection_kwargs)
        for key, cls in self.automap_base.classes.items():
            self._models.add(key, cls)
        for key, cls in self._explicit.items():
            self._models.add(key, cls)

    def __repr__(self) -> str:
        schemas = ", ".join(sorted(self._reflected_schemas))
        return f"<{type(self).__name__} schemas=[{schemas}] models={len(self._models)}>"
