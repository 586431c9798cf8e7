"""Naming rules for automapped models and their relationships.

Model keys (and class names): a table in ``public`` (reflected with no schema)
is known by its bare name (``sample``); any other by ``<schema>_<table>``
(``geology_formation``). Case is kept (``MixedCase``).

Relationship names follow the upstream rules whenever they are unambiguous:

- many-to-one, on the class holding the foreign key: ``_<referred table>``,
  lower-cased (``Sample._formation``; a self-reference gives ``_sample``);
- one-to-many and many-to-many, on the other class:
  ``<member class>_collection`` (``geology_formation.sample_collection``).

When a default name would be shared by two relationships of one class, each
gets a qualified name instead, so none is lost and the names do not depend on
reflection order:

- many-to-one: ``_<fk columns>``, each column without a trailing ``_id`` and
  joined by ``_`` (``sample.upper_formation_id`` -> ``Sample._upper_formation``);
- one-to-many: ``<member class>_<fk columns>_collection``
  (``geology_formation.sample_upper_formation_collection``);
- many-to-many: ``<member class>_via_<link table key>_collection``, plus
  ``_<fk columns>`` of the link table when it links a table to itself.

A name equal to a column's key gets ``_rel`` appended. If two relationships
would still get one name (pathological column names), the later one gets a
numeric suffix and a warning is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ForeignKeyConstraint, MetaData, Table

from .catalog import TableIndex, referred_key

__all__ = [
    "RelationshipNamer",
    "classname_for_table",
    "model_key",
    "name_for_collection_relationship",
    "name_for_scalar_relationship",
    "parse_table_name",
    "trim_postfix",
]

log = logging.getLogger(__name__)


def parse_table_name(
    name: str | tuple[str, str], schema: str | None = None
) -> tuple[str, str]:
    """Split a table reference into ``(schema, table)``.

    Accepts ``"table"``, ``"schema.table"`` (split on the first dot) or a
    ``(schema, table)`` tuple. An explicit ``schema`` wins over a dotted
    prefix. The schema defaults to ``"public"``.

    Parameters:
        name: the table reference.
        schema: the schema, if given separately.
    """
    if isinstance(name, tuple):
        found_schema, table = name
    elif "." in name:
        found_schema, table = name.split(".", 1)
    else:
        found_schema, table = None, name
    if schema is not None:
        found_schema = schema
    return (found_schema or "public", table)


def model_key(schema: str | None, table: str) -> str:
    """The key (and class name) of a model: ``table`` in public, else ``schema_table``."""
    if schema is None or schema == "public":
        return table
    return f"{schema}_{table}"


def classname_for_table(table: Table) -> str:
    """The model key of ``table`` (see `model_key`)."""
    return model_key(table.schema, table.name)


def _classname_for_table(base: Any, tablename: str, table: Table) -> str:
    """`classname_for_table` in the signature automap's ``prepare`` expects."""
    return classname_for_table(table)


def trim_postfix(target: str, postfix: str = "_id") -> str:
    """Return ``target`` without ``postfix`` at its end (unless nothing would be left)."""
    if target.endswith(postfix) and len(target) > len(postfix):
        return target[: -len(postfix)]
    return target


def _columns_label(constraint: ForeignKeyConstraint) -> str:
    return "_".join(trim_postfix(col.name.lower()) for col in constraint.columns)


def name_for_scalar_relationship(
    base: Any, local_cls: type, referred_cls: type, constraint: ForeignKeyConstraint
) -> str:
    """The plain upstream many-to-one name: ``_<referred table>`` (may collide)."""
    return "_" + constraint.referred_table.name.lower()


def name_for_collection_relationship(
    base: Any, local_cls: type, referred_cls: type, constraint: ForeignKeyConstraint
) -> str:
    """The plain upstream collection name: ``<referred class>_collection`` (may collide)."""
    return referred_cls.__name__.lower() + "_collection"


def _link_tables(index: TableIndex) -> dict[tuple[str, str], list[str]]:
    """Association table keys by the pair of table keys they link (both orders).

    Same rule as automap: exactly two foreign keys covering every column, with
    both referred tables mappable.
    """
    links: dict[tuple[str, str], list[str]] = {}
    for info in index:
        if not info.link or len(info.targets) != 2:
            continue
        a, b = info.targets
        if not (index.mappable(a) and index.mappable(b)):
            continue
        links.setdefault((a, b), []).append(info.key)
        if a != b:
            links.setdefault((b, a), []).append(info.key)
    return links


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Element-wise identity (SQLAlchemy objects overload ``==``)."""
    return len(a) == len(b) and all(
        x is y or (isinstance(x, str) and x == y) for x, y in zip(a, b, strict=False)
    )


class RelationshipNamer:
    """Collision-free relationship names for one automap base (rules above).

    `DatabaseMapper` calls `reset` with its ``MetaData`` before each
    ``prepare``; `scalar` and `collection` are the two naming hooks.
    """

    def __init__(self) -> None:
        self._links: dict[tuple[str, str], list[str]] = {}
        self._names: dict[str, str] = {}
        self._used: dict[tuple[type, str], tuple[Any, ...]] = {}

    def reset(self, tables: MetaData | TableIndex) -> None:
        """Index the association tables (of a ``MetaData`` or a `TableIndex`)."""
        if isinstance(tables, MetaData):
            tables = TableIndex.from_metadata(tables)
        self._links = _link_tables(tables)
        self._names = {info.key: info.name for info in tables}

    def _table_name(self, key: str) -> str:
        """The table name behind a ``MetaData`` key."""
        return self._names.get(key) or key.rsplit(".", 1)[-1]

    def scalar(
        self,
        base: Any,
        local_cls: type,
        referred_cls: type,
        constraint: ForeignKeyConstraint,
    ) -> str:
        """Name the many-to-one relationship ``local_cls`` gets for ``constraint``."""
        local = constraint.table
        referred_name = self._table_name(referred_key(constraint)).lower()
        siblings = sum(
            1
            for fk in local.foreign_key_constraints
            if self._table_name(referred_key(fk)).lower() == referred_name
        )
        name = "_" + _columns_label(constraint) if siblings > 1 else "_" + referred_name
        return self._claim(local_cls, name, ("scalar", constraint))

    def collection(
        self,
        base: Any,
        local_cls: type,
        referred_cls: type,
        constraint: ForeignKeyConstraint,
    ) -> str:
        """Name the collection of ``referred_cls`` objects that ``local_cls`` gets.

        ``constraint`` is the foreign key of ``referred_cls``'s table (one-to-many)
        or of the association table (many-to-many) that points at ``local_cls``.
        """
        holder: Table = local_cls.__table__  # type: ignore[attr-defined]
        member: Table = referred_cls.__table__  # type: ignore[attr-defined]
        links = self._links.get((holder.key, member.key), [])
        direct = sum(
            1 for fk in member.foreign_key_constraints if referred_key(fk) == holder.key
        )
        total = direct + len(links) * (2 if holder is member else 1)
        stem = referred_cls.__name__.lower()
        if total <= 1:
            name = f"{stem}_collection"
        elif constraint.table is member:
            name = f"{stem}_{_columns_label(constraint)}_collection"
        else:
            link = constraint.table
            qualifier = "via_" + classname_for_table(link).lower()
            if holder is member:
                qualifier += "_" + _columns_label(constraint)
            name = f"{stem}_{qualifier}_collection"
        return self._claim(local_cls, name, ("collection", constraint, referred_cls))

    def _claim(self, cls: type, name: str, token: tuple[Any, ...]) -> str:
        table: Table = cls.__table__  # type: ignore[attr-defined]
        if name in table.c:
            name += "_rel"
        candidate, n = name, 1
        while True:
            owner = self._used.get((cls, candidate))
            if owner is None or _same(owner, token):
                break
            n += 1
            candidate = f"{name}_{n}"
        if candidate != name:
            log.warning(
                "relationship name %r is already used on %s; using %r instead",
                name,
                cls.__name__,
                candidate,
            )
        self._used[(cls, candidate)] = token
        return candidate
