"""Lazy models: each class is mapped on first use, with all of its relationships.

Mapping every table up front costs about a millisecond per table in
SQLAlchemy, whether or not the program uses it; a cached warm start would
spend nearly all its time there. `LazyModels` maps nothing until a model is
asked for. Asking for one (``db.model.sample``) *completes* it:

- its table is loaded (from the cache file if it came from one), and so are
  the tables of its neighbours: the mappable tables it points at, those that
  point at it, and the association tables joining it to others;
- each neighbour is mapped with its columns (if it is not mapped yet);
- every relationship between the class and a neighbour is added, in pairs
  (many-to-one with its one-to-many, or both sides of a many-to-many), with
  the names and options `DatabaseMapper`'s eager path gives them.

A neighbour mapped that way is usable at once (columns, and every
relationship to a completed class) and completes itself as soon as one of its
instances exists (constructed or loaded, so a flush or a delete cascade always
sees every relationship), or the first time a missing attribute is read or
set on the class; so ``sample._formation.sample_collection``,
``Formation(sample_collection=[...])`` and
``select(Formation).join(Formation.sample_collection)`` all work without the
caller knowing what is mapped.

Introspection sees whole classes too: every read of a class's mapper
(``sqlalchemy.inspect(cls)``, ``cls.__mapper__``, ``class_mapper(cls)``,
``inspect(obj).mapper``) goes through `LazyMapper`, which completes the class
before it answers ``attrs``, ``relationships``, ``column_attrs``,
``synonyms``, ``composites``, ``all_orm_descriptors``,
``iterate_properties``, ``get_property`` or ``has_property``, and whenever
SQLAlchemy itself checks that the mapper is configured (``_check_configure``:
queries, ``aliased``, object construction). Schema generators
(marshmallow-sqlalchemy, admin UIs) therefore see the same attributes as with
eager automap. A model that nothing touches is still never mapped, and
neighbours of a neighbour are mapped only when the neighbour is used.

Longer than 400 lines because completing a model touches SQLAlchemy's
configure step from several hooks (class attributes, instances, construction)
that must agree on one lock and one notion of "complete".
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Table, and_, event
from sqlalchemy.orm import DeclarativeMeta, Mapper, backref, relationship

from .cache import paused_gc
from .catalog import TableIndex, TableSource, referred_key, sorted_foreign_keys
from .naming import RelationshipNamer, model_key

# The module: ``sqlalchemy.orm.mapper`` as an attribute is the removed mapper().
_sa_mapper = importlib.import_module("sqlalchemy.orm.mapper")

__all__ = ["LazyMapper", "LazyModelMeta", "LazyModels", "complete_on_construction"]

log = logging.getLogger(__name__)

_OWNER = "_macrostrat_lazy_owner"
_PENDING = "_macrostrat_lazy_pending"


# Attribute names SQLAlchemy itself looks up (and may find missing) on mapped
# classes and instances; a relationship could never be called by one of them
# without breaking SQLAlchemy anyway.
_SQLALCHEMY_NAMES = frozenset(
    {
        "_sa_apply_dc_transforms",
        "_sa_class_manager",
        "_sa_decl_prepare",
        "_sa_decl_prepare_nocascade",
        "_sa_disable_descriptor_defaults",
        "_sa_inspect_instance",
        "_sa_inspect_type",
        "_sa_instance_state",
        "_sa_instrumented",
        "_sa_original_init",
        "_sa_polymorphic_on",
        "_sa_raise_deferred_config",
        "_sa_registry",
    }
)


def _internal(name: str) -> bool:
    """Names that never complete a class: Python's dunders and SQLAlchemy's probes.

    Everything else may be a relationship still to come, including names like
    ``_sa_region`` (a foreign key to table ``sa_region``) or ``__audit`` (to
    ``_audit``).
    """
    return (
        (name.startswith("__") and name.endswith("__"))
        or name in _SQLALCHEMY_NAMES
        or name == _OWNER
    )


def _owner_of(cls: type) -> LazyModels | None:
    for klass in cls.__mro__:
        owner: LazyModels | None = klass.__dict__.get(_OWNER)
        if owner is not None:
            return owner
    return None


class LazyModelMeta(DeclarativeMeta):
    """Metaclass of lazy model bases: a class completes itself on a missing attribute."""

    def __getattr__(cls, name: str) -> Any:
        owner = None if _internal(name) else _owner_of(cls)
        if owner is not None and owner.complete(cls):
            return getattr(cls, name)
        raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


def _instance_getattr(self: Any, name: str) -> Any:
    """``__getattr__`` of a class that is not complete yet."""
    cls = type(self)
    owner = None if _internal(name) else _owner_of(cls)
    if owner is not None and owner.complete(cls):
        return getattr(self, name)
    raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")


def _instance_setattr(self: Any, name: str, value: Any) -> None:
    """``__setattr__`` of a class that is not complete yet.

    Setting a relationship the class does not have yet would otherwise store
    a plain attribute that is never flushed.
    """
    cls = type(self)
    if not _internal(name) and not any(name in k.__dict__ for k in cls.__mro__):
        owner = _owner_of(cls)
        if owner is not None:
            owner.complete(cls)
    object.__setattr__(self, name, value)


def _on_init(target: Any, *args: Any) -> None:
    """``init`` listener: an object is being constructed, so its class completes.

    (Loaded objects are left to the attribute hooks and `LazyMapper`: a
    listener on ``load`` would run for every row.)
    """
    cls = type(target)
    owner = _owner_of(cls)
    if owner is not None:
        owner.complete(cls)


def _configuring_here() -> bool:
    """True when this thread is inside SQLAlchemy's configure step.

    Completing a class maps more classes and configures them, which must not
    happen in the middle of SQLAlchemy configuring (its loop would skip the
    new mappers and mark the registry configured). When another thread is
    configuring, wait for it to finish: the class can then be completed.
    """
    if not getattr(_sa_mapper, "_already_compiling", False):
        return False
    mutex = getattr(_sa_mapper, "_CONFIGURE_MUTEX", None)
    if mutex is None:  # pragma: no cover - another SQLAlchemy layout
        return True
    with mutex:  # re-entrant: ours at once; another thread's once it is done
        return bool(_sa_mapper._already_compiling)


def _complete_first(name: str) -> property:
    """A `LazyMapper` property that completes the class, then reads Mapper's ``name``.

    A data descriptor, unlike SQLAlchemy's memoized attributes, so it runs on
    every read, also when a value was memoized while the class was still
    being mapped (then the completion expires it).
    """
    memoized = getattr(Mapper, name)

    def read(self: LazyMapper) -> Any:
        if self.__dict__.get(_PENDING) is not None:
            self._complete_pending()
        try:
            return self.__dict__[name]
        except KeyError:
            return memoized.__get__(self, type(self))

    return property(read, doc=memoized.__doc__)


class LazyMapper(Mapper[Any]):
    """The mapper of lazy model classes: whatever reads it sees the complete class.

    A class mapped as a neighbour carries its `LazyModels` in the mapper
    until it completes. Until then:

    - the public introspection attributes (``attrs``, ``relationships``,
      ``column_attrs``, ``synonyms``, ``composites``, ``all_orm_descriptors``,
      ``iterate_properties``) and ``get_property``/``has_property`` of a
      missing key complete it first;
    - so does ``_check_configure``, SQLAlchemy's own "is this mapper ready"
      step (``class_mapper``, queries, ``aliased``, constructing objects);
    - ``cascade_iterator`` too: ``Session.add``, ``delete``, ``merge`` and
      ``expunge`` (and a flush's orphan handling) walk an object's
      relationships without reading a missing attribute, so every
      relationship (and its cascade rules) takes part.
    """

    def _complete_pending(self) -> None:
        owner = self.__dict__.get(_PENDING)
        if owner is not None:
            owner.complete(self.class_)

    def _check_configure(self) -> None:
        if self.__dict__.get(_PENDING) is not None:
            self._complete_pending()
        super()._check_configure()

    attrs = _complete_first("attrs")
    relationships = _complete_first("relationships")
    column_attrs = _complete_first("column_attrs")
    synonyms = _complete_first("synonyms")
    composites = _complete_first("composites")
    all_orm_descriptors = _complete_first("all_orm_descriptors")

    @property
    def iterate_properties(self) -> Any:
        """Every ``MapperProperty`` of the complete class."""
        self._complete_pending()
        return super().iterate_properties

    def get_property(self, key: str, _configure_mappers: bool = False) -> Any:
        """The ``MapperProperty`` ``key`` (the class completes if it lacks it)."""
        if key not in self._props:
            self._complete_pending()
        return super().get_property(key, _configure_mappers)

    def has_property(self, key: str) -> bool:
        """True when the complete class has property ``key``."""
        if key not in self._props:
            self._complete_pending()
        return super().has_property(key)

    def cascade_iterator(self, type_: str, state: Any, halt_on: Any = None) -> Any:
        self._complete_pending()
        return super().cascade_iterator(type_, state, halt_on)


def complete_on_construction(base: type) -> None:
    """Make every class of lazy ``base`` complete itself when an object is constructed."""
    event.listen(base, "init", _on_init, propagate=True)


_HOOKS: dict[str, Callable[..., Any]] = {
    "__getattr__": _instance_getattr,
    "__setattr__": _instance_setattr,
}


class LazyModels:
    """The model classes of one `DatabaseMapper`, mapped as they are used.

    Parameters:
        base: the declarative base (its metaclass must be `LazyModelMeta`).
        index: a summary of every table.
        source: hands out the ``Table`` objects.
        namer: names the relationships.
        lock: the mapper's lock (mapping is serialised with everything else).
    """

    def __init__(
        self,
        base: type,
        index: TableIndex,
        source: TableSource,
        namer: RelationshipNamer,
        lock: threading.RLock,
    ) -> None:
        self.base = base
        self.namer = namer
        self._lock = lock
        self._classes: dict[str, type] = {}
        self._complete: set[str] = set()
        self._pairs: set[tuple[Any, ...]] = set()
        self._busy = threading.local()
        self.keys: dict[str, str] = {}
        self.reindex(index, source)

    # -- what is known -------------------------------------------------------

    def reindex(self, index: TableIndex, source: TableSource) -> None:
        """Use a new index (more schemas or views reflected).

        Classes completed before gain the relationships to tables that are new
        in ``index``.
        """
        with self._lock:
            self.index = index
            self.source = source
            self.namer.reset(index)
            keys: dict[str, str] = {}
            for info in index:
                if not info.mappable:
                    continue
                key = model_key(info.schema, info.name)
                if key in keys and keys[key] != info.key:
                    log.warning(
                        "tables %s and %s share the model key %r; mapping the first",
                        keys[key],
                        info.key,
                        key,
                    )
                    continue
                keys[key] = info.key
            self.keys = keys
            if self._complete:
                for table_key in list(self._complete):
                    self._complete.discard(table_key)
                    self._complete_table(table_key)
                self._configure()

    def owns(self, cls: object) -> bool:
        """True when ``cls`` is one of the classes mapped here."""
        return any(cls is c for c in self._classes.values())

    def is_complete(self, cls: type) -> bool:
        """True when ``cls`` has all of its relationships."""
        table: Table = cls.__table__  # type: ignore[attr-defined]
        return table.key in self._complete

    # -- mapping -------------------------------------------------------------

    def model(self, key: str) -> type:
        """The completed class for model key ``key`` (``KeyError`` if unknown)."""
        table_key = self.keys[key]
        with self._lock, paused_gc():
            cls = self._ensure_class(table_key)
            self._complete_table(table_key)
            self._configure()
        return cls

    def complete(self, cls: type) -> bool:
        """Give ``cls`` all of its relationships (called by the attribute hooks).

        Returns False, doing nothing, when called while this thread is already
        mapping (SQLAlchemy probing a class mid-way must not cascade) or is
        inside SQLAlchemy's configure step.
        """
        if getattr(self._busy, "active", False) or _configuring_here():
            return False
        table: Table = cls.__table__  # type: ignore[attr-defined]
        with self._lock, paused_gc():
            self._complete_table(table.key)
            self._configure()
        return True

    def map_all(self) -> None:
        """Map and complete every model."""
        with self._lock, paused_gc():
            for table_key in self.keys.values():
                self._ensure_class(table_key)
            for table_key in self.keys.values():
                self._complete_table(table_key)
            self._configure()

    def _configure(self) -> None:
        """Configure the new mappers now, so both sides of each pair exist as attributes.

        (SQLAlchemy otherwise creates a backref's attribute on the first query.)
        """
        active = getattr(self._busy, "active", False)
        self._busy.active = True
        try:
            self.base.registry.configure(cascade=True)  # type: ignore[attr-defined]
        finally:
            self._busy.active = active

    def _ensure_class(self, table_key: str) -> type:
        cls = self._classes.get(table_key)
        if cls is not None:
            return cls
        table = self.source.table(table_key)
        info = self.index.infos[table_key]
        active = getattr(self._busy, "active", False)
        self._busy.active = True
        try:
            cls = type(
                model_key(info.schema, info.name), (self.base,), {"__table__": table}
            )
        finally:
            self._busy.active = active
        for name, hook in _HOOKS.items():
            type.__setattr__(cls, name, hook)
        type.__setattr__(cls, _OWNER, self)
        cls.__mapper__.__dict__[_PENDING] = self  # type: ignore[attr-defined]
        self._classes[table_key] = cls
        return cls

    def _complete_table(self, table_key: str) -> None:
        if table_key in self._complete:
            return
        active = getattr(self._busy, "active", False)
        self._busy.active = True
        try:
            cls = self._ensure_class(table_key)
            models, links = self.index.neighbours(table_key)
            for other in models:
                self._ensure_class(other)
            for fk in sorted_foreign_keys(cls.__table__):  # type: ignore[attr-defined]
                target = referred_key(fk)
                if target in self._classes and self.index.mappable(target):
                    self._add_fk_pair(table_key, fk, target)
            for other in models:
                other_table: Table = self._classes[other].__table__  # type: ignore[attr-defined]
                for fk in sorted_foreign_keys(other_table):
                    if referred_key(fk) == table_key:
                        self._add_fk_pair(other, fk, table_key)
            for link in links:
                self._add_link_pair(link)
            self._complete.add(table_key)
            for name in (*_HOOKS, _OWNER):
                if name in cls.__dict__:
                    type.__delattr__(cls, name)
            mapper: Mapper[Any] = cls.__mapper__  # type: ignore[attr-defined]
            if mapper.__dict__.pop(_PENDING, None) is not None:
                # Values memoized while it was incomplete are stale.
                mapper._expire_memoizations()
        finally:
            self._busy.active = active

    def _add_fk_pair(
        self, local_key: str, fk: ForeignKeyConstraint, target_key: str
    ) -> None:
        """Many-to-one on the table holding ``fk``, one-to-many on its target."""
        # PostgreSQL allows two constraints on the same columns: keep both.
        token = (
            "fk",
            local_key,
            fk.name,
            tuple(c.name for c in fk.columns),
            target_key,
        )
        if token in self._pairs:
            return
        local_cls = self._classes[local_key]
        referred_cls = self._classes[target_key]
        scalar = self.namer.scalar(self.base, local_cls, referred_cls, fk)
        collection = self.namer.collection(self.base, referred_cls, local_cls, fk)
        columns = list(fk.columns)
        one_to_many: dict[str, Any] = {}
        ondelete = (fk.ondelete or "").lower()
        if not all(col.nullable for col in columns):
            one_to_many["cascade"] = "all, delete-orphan"
            if ondelete == "cascade":
                one_to_many["passive_deletes"] = True
        elif ondelete == "set null":
            one_to_many["passive_deletes"] = True
        rel = relationship(
            referred_cls,
            foreign_keys=columns,
            remote_side=[element.column for element in fk.elements],
            backref=backref(collection, collection_class=list, **one_to_many),
        )
        local_cls.__mapper__.add_property(scalar, rel)  # type: ignore[attr-defined]
        self._pairs.add(token)

    def _add_link_pair(self, link_key: str) -> None:
        """Both sides of the many-to-many through association table ``link_key``."""
        token = ("link", link_key)
        if token in self._pairs:
            return
        link = self.source.table(link_key)
        first, second = sorted_foreign_keys(link)
        local_cls = self._classes[referred_key(first)]
        referred_cls = self._classes[referred_key(second)]
        name = self.namer.collection(self.base, local_cls, referred_cls, first)
        back = self.namer.collection(self.base, referred_cls, local_cls, second)
        rel = relationship(
            referred_cls,
            secondary=link,
            primaryjoin=and_(*(e.column == e.parent for e in first.elements)),
            secondaryjoin=and_(*(e.column == e.parent for e in second.elements)),
            collection_class=list,
            backref=backref(back, collection_class=list),
        )
        local_cls.__mapper__.add_property(name, rel)  # type: ignore[attr-defined]
        self._pairs.add(token)
