"""What the lazy mapper knows about every table before loading it.

`TableInfo` is a small, plain summary of one reflected table: its key, whether
it has a primary key, the tables its foreign keys point at and whether it is
an association ("link") table. A `TableIndex` of those summaries is all the
lazy mapper needs to decide which tables to load when a model is first used:
the table itself, the tables it points at, the tables that point at it, and
the link tables that join it to others. The summaries are written into the
model cache beside the tables, so a warm start reads them without unpickling
any table.

A `TableSource` hands out the ``Table`` objects themselves: `ReflectedTables`
when everything was just reflected, ``CachedTables``
(`macrostrat.database.mapper.tablefile`) when they come from a cache file one
table at a time.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ForeignKeyConstraint, MetaData, Table

__all__ = [
    "ReflectedTables",
    "TableIndex",
    "TableInfo",
    "TableSource",
    "referred_key",
]


def referred_key(constraint: ForeignKeyConstraint) -> str:
    """The ``MetaData`` key of the table a foreign key points at, without resolving it.

    Resolving (``constraint.referred_table``) needs the target table loaded;
    the lazy mapper must be able to read a table's foreign keys while their
    targets are still in the cache file.
    """
    element = constraint.elements[0]
    resolved = element.__dict__.get("column")  # memoized once resolved
    if resolved is not None and getattr(resolved, "table", None) is not None:
        return str(resolved.table.key)
    # The spec parsed exactly as SQLAlchemy parses it when it resolves the
    # target (``target_tokens`` since 2.1, ``_column_tokens`` in 2.0).
    tokens = getattr(element, "target_tokens", None) or element._column_tokens
    schema, table = tokens[0], tokens[1]
    return f"{schema}.{table}" if schema else str(table)


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A summary of one table: enough to plan mapping without loading it.

    Parameters:
        key: the ``MetaData`` key (``"schema.table"``, or ``"table"`` in public).
        schema: the schema as reflected (None for the default schema).
        name: the table name.
        has_pk: the table has a primary key (tables without one are not mapped).
        targets: the key of the table each foreign key points at, in a stable
            order; foreign keys to tables that were not reflected are left out.
        link: the table is an association table (exactly two foreign keys that
            cover all its columns, SQLAlchemy automap's rule): it is not mapped
            as a class but becomes a many-to-many relationship.
    """

    key: str
    schema: str | None
    name: str
    has_pk: bool
    targets: tuple[str, ...]
    link: bool

    @property
    def mappable(self) -> bool:
        """True when the table gets a model class of its own."""
        return self.has_pk and not self.link

    @classmethod
    def describe(cls, table: Table, known: Container[str] | None = None) -> TableInfo:
        """Summarise ``table``; ``known`` are the keys its targets must be among."""
        fks = sorted_foreign_keys(table)
        keys = [referred_key(fk) for fk in fks]
        if known is not None:
            keys = [k for k in keys if k in known]
        covered = {col for fk in fks for col in fk.columns}
        link = len(fks) == 2 and covered == set(table.c)
        return cls(
            key=table.key,
            schema=table.schema,
            name=table.name,
            has_pk=bool(table.primary_key.columns),
            targets=tuple(keys),
            link=link,
        )

    def as_tuple(self) -> tuple[object, ...]:
        """A plain tuple for the cache file (no classes of ours in the pickle)."""
        return (self.key, self.schema, self.name, self.has_pk, self.targets, self.link)

    @classmethod
    def from_tuple(cls, row: tuple[object, ...]) -> TableInfo:
        """The inverse of `as_tuple` (raises ``TypeError``/``ValueError`` if malformed)."""
        key, schema, name, has_pk, targets, link = row
        if not isinstance(key, str) or not isinstance(name, str):
            raise TypeError("malformed table summary")
        if schema is not None and not isinstance(schema, str):
            raise TypeError("malformed table summary")
        if not isinstance(targets, tuple) or not all(
            isinstance(t, str) for t in targets
        ):
            raise TypeError("malformed table summary")
        return cls(key, schema, name, bool(has_pk), targets, bool(link))


def sorted_foreign_keys(table: Table) -> list[ForeignKeyConstraint]:
    """The table's foreign key constraints in a stable order.

    ``Table.foreign_key_constraints`` is a set; ordering by the local column
    names and then the target makes names and link directions reproducible.
    """
    return sorted(
        table.foreign_key_constraints,
        key=lambda fk: (
            tuple(c.name for c in fk.columns),
            referred_key(fk),
            fk.name or "",
        ),
    )


class TableIndex:
    """`TableInfo` by key, with the reverse edges the lazy mapper walks.

    Parameters:
        infos: one summary per table.
    """

    def __init__(self, infos: Iterable[TableInfo]) -> None:
        self.infos: dict[str, TableInfo] = {}
        self.referrers: dict[str, list[str]] = {}
        for info in infos:
            self.add(info)

    def add(self, info: TableInfo) -> None:
        """Add (or replace) one table's summary."""
        old = self.infos.get(info.key)
        if old is not None:
            for target in set(old.targets):
                self.referrers[target].remove(old.key)
        self.infos[info.key] = info
        for target in dict.fromkeys(info.targets):
            self.referrers.setdefault(target, []).append(info.key)

    def __contains__(self, key: object) -> bool:
        return key in self.infos

    def __iter__(self) -> Iterator[TableInfo]:
        return iter(self.infos.values())

    def __len__(self) -> int:
        return len(self.infos)

    def mappable(self, key: str) -> bool:
        """True when ``key`` is a known table that gets a model class."""
        info = self.infos.get(key)
        return info is not None and info.mappable

    def neighbours(self, key: str) -> tuple[list[str], list[str]]:
        """``(models, links)`` that must be loaded to give ``key`` all its relationships.

        ``models`` are the mappable tables ``key`` points at or that point at it;
        ``links`` are the association tables that join ``key`` to a mappable
        table (that table is in ``models``).
        """
        info = self.infos[key]
        models: dict[str, None] = {}
        links: list[str] = []
        for target in info.targets:
            if self.mappable(target):
                models[target] = None
        for other in self.referrers.get(key, []):
            other_info = self.infos[other]
            if other_info.mappable:
                models[other] = None
            elif other_info.link and all(self.mappable(t) for t in other_info.targets):
                links.append(other)
                for t in other_info.targets:
                    models[t] = None
        models.pop(key, None)
        return list(models), links

    def tuples(self) -> list[tuple[object, ...]]:
        """Every summary as a plain tuple (for the cache file)."""
        return [info.as_tuple() for info in self.infos.values()]

    @classmethod
    def from_metadata(cls, metadata: MetaData) -> TableIndex:
        """Summarise every table of a fully loaded ``metadata``."""
        tables = metadata.tables
        return cls(TableInfo.describe(t, tables) for t in tables.values())


class TableSource(Protocol):
    """Hands out the ``Table`` objects of a `TableIndex`, loading them on demand."""

    metadata: MetaData

    def table(self, key: str) -> Table:
        """The table under ``key``, in ``metadata`` (loaded now if needed)."""
        ...

    def load_all(self) -> None:
        """Load every table into ``metadata``."""
        ...


class ReflectedTables:
    """A `TableSource` over a ``MetaData`` that already holds every table."""

    def __init__(self, metadata: MetaData) -> None:
        self.metadata = metadata

    def table(self, key: str) -> Table:
        """The table under ``key`` (``KeyError`` if there is none)."""
        return self.metadata.tables[key]

    def load_all(self) -> None:
        """Nothing to do: every table is loaded."""
