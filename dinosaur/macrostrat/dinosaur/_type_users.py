"""What uses a type or a function in the live database, and what a plan already drops.

Before the enum and domain recreations (`macrostrat.dinosaur._enums`,
`macrostrat.dinosaur._domains`) convert a type's columns, and before a
function is dropped and created again (`macrostrat.dinosaur._functions`),
they must know what else uses it: ``results`` does not look, and PostgreSQL
would refuse the rest mid-migration.

- `type_dependents`: the live objects that depend on a type or its array
  type (`Dependent`: columns, defaults, constraints, functions, types,
  policies, triggers...); `function_dependents`: the same for functions;
  `column_obstacles`: the generated columns and foreign keys that stop a
  column's conversion;
- `PlanDrops`: what the plan drops already (no obstacle; `drops_of` picks
  those statements); `refuse`: the `MigrationError` naming the dependents a
  conversion cannot carry, and those outside the schemas the plan covers.

The views dropped and created again around a recreation are
`macrostrat.dinosaur._view_users`, which builds on these lookups.

The queries run, on a connection of their own, only for the plans that
recreate a type, so they stay out of the catalog graph every plan reads
(`macrostrat.dinosaur._depends`).

Longer than 400 lines because its two catalog queries (about 120 lines of
SQL) and the reading of their rows and of the plan's drops are one lookup,
shared by the enum, domain, composite type and function recreations, so it
sits in a layer below them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ._targets import conninfo
from .errors import MigrationError
from .hazards import (
    _DROP,
    _IDENT,
    _QNAME,
    _bare,
    _first_name,
    _norm_name,
    _object_kind,
    _split_top_level,
    _strip_comments,
)

__all__ = [
    "Dependent",
    "PlanDrops",
    "column_obstacles",
    "drops_of",
    "function_dependents",
    "live_conninfo",
    "plain_dependent",
    "read_live",
    "refuse",
    "results_key",
    "type_dependents",
]

_I = re.IGNORECASE | re.DOTALL

_DEPENDENTS = """
WITH wanted AS (
  SELECT 'pg_type'::regclass AS refclass, t.oid, t.typarray AS arr, n.nspname,
         t.typname::text AS name
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS w(nspname, typname)
    ON w.nspname = n.nspname AND w.typname = t.typname
  UNION ALL
  SELECT 'pg_proc'::regclass, p.oid, 0::oid, n.nspname,
         p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN unnest(%(fschemas)s::text[], %(fnames)s::text[], %(fargs)s::text[])
    AS f(nspname, proname, args)
    ON f.nspname = n.nspname AND f.proname = p.proname
   AND f.args = pg_get_function_identity_arguments(p.oid)
)
SELECT w.nspname, w.name, d.refobjid <> w.oid,
       d.classid::regclass::text, pg_describe_object(d.classid, d.objid, d.objsubid),
       rn.nspname, rel.relname, rel.relkind, att.attname,
       coalesce(att.attgenerated <> '', false),
       coalesce(att.attinhcount > 0, NOT con.conislocal, false),
       coalesce(att.attnum = ANY (pt.partattrs::int2[]), false),
       coalesce(pn.nspname, tn.nspname),
       coalesce(p.proname, tt.typname, con.conname, pol.polname, tg.tgname),
       con.contype, pg_get_constraintdef(con.oid)
FROM wanted w
JOIN pg_depend d ON d.refclassid = w.refclass
  AND d.refobjid IN (w.oid, w.arr) AND d.deptype IN ('n', 'a')
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
LEFT JOIN pg_constraint con
  ON d.classid = 'pg_constraint'::regclass AND con.oid = d.objid
LEFT JOIN pg_policy pol ON d.classid = 'pg_policy'::regclass AND pol.oid = d.objid
LEFT JOIN pg_trigger tg ON d.classid = 'pg_trigger'::regclass AND tg.oid = d.objid
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
LEFT JOIN pg_type tt ON d.classid = 'pg_type'::regclass AND tt.oid = d.objid
LEFT JOIN pg_namespace tn ON tn.oid = tt.typnamespace
LEFT JOIN pg_class rel ON rel.oid = CASE
    WHEN d.classid = 'pg_class'::regclass THEN d.objid
    WHEN d.classid = 'pg_attrdef'::regclass THEN ad.adrelid
    WHEN d.classid = 'pg_rewrite'::regclass THEN rw.ev_class
    WHEN d.classid = 'pg_constraint'::regclass THEN nullif(con.conrelid, 0)
    WHEN d.classid = 'pg_policy'::regclass THEN pol.polrelid
    WHEN d.classid = 'pg_trigger'::regclass THEN tg.tgrelid END
LEFT JOIN pg_namespace rn ON rn.oid = rel.relnamespace
LEFT JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum = CASE
    WHEN d.classid = 'pg_class'::regclass THEN d.objsubid
    WHEN d.classid = 'pg_attrdef'::regclass THEN ad.adnum END
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = rel.oid
WHERE NOT (d.classid = 'pg_constraint'::regclass AND con.contypid = w.oid
           AND w.refclass = 'pg_type'::regclass)
ORDER BY 1, 2, 5
"""

# The views and materialized views on the table columns of a type (or on the
# given relations), and the views on those, with their depth (1: on the
# columns or relations).
_COLUMN_OBSTACLES = """
WITH cols AS (
  SELECT c.oid AS rel, a.attnum, n.nspname, c.relname, a.attname
  FROM unnest(%(schemas)s::text[], %(rels)s::text[], %(cols)s::text[])
    AS w(nspname, relname, attname)
  JOIN pg_namespace n ON n.nspname = w.nspname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.relname
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = w.attname
)
SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid),
       rn.nspname, rel.relname, rel.relkind, ga.attname, con.conname,
       con.contype, cols.nspname || '.' || cols.relname || '.' || cols.attname
FROM cols JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass
  AND d.refobjid = cols.rel AND d.refobjsubid = cols.attnum
  AND d.deptype IN ('n', 'a')
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
LEFT JOIN pg_attribute ga ON ga.attrelid = ad.adrelid AND ga.attnum = ad.adnum
LEFT JOIN pg_constraint con
  ON d.classid = 'pg_constraint'::regclass AND con.oid = d.objid
LEFT JOIN pg_class rel ON rel.oid = coalesce(ad.adrelid, con.conrelid)
LEFT JOIN pg_namespace rn ON rn.oid = rel.relnamespace
WHERE (ga.attgenerated <> '' AND ga.attnum <> cols.attnum)
   OR (%(fkeys)s AND con.contype = 'f')
ORDER BY 1
"""


def results_key(schema: str, name: str) -> str:
    """The key of a relation in a ``results`` inspection: its quoted full name."""
    return (
        sql.SQL("{}.{}")
        .format(sql.Identifier(schema), sql.Identifier(name))
        .as_string(None)
    )


@dataclass(frozen=True)
class Dependent:
    """One object of the live database that depends on a type (or its array type).

    Attributes:
        type_name: ``schema.name`` of the type it depends on (for a
            function: ``schema.name(identity arguments)``).
        via_array: it depends on the type's array type.
        catalog: the system catalog it lives in (``pg_class``, ``pg_proc``...).
        description: ``pg_describe_object``'s words for it.
        relation: ``(schema, name)`` of its relation (a column's table, a
            default's, rule's, constraint's, policy's or trigger's table; an
            index), or None.
        relkind: that relation's ``relkind``.
        column: the column, for a column or a column default.
        generated: the column is generated.
        inherited: the column or constraint is inherited (from a parent or
            partitioned table, which converts or recreates it).
        partition_key: the column is in its table's partition key.
        name: ``schema.name`` of a function or type; the bare name of a
            constraint, policy or trigger.
        contype: a constraint's ``contype``.
        definition: a constraint's definition.
    """

    type_name: str
    via_array: bool
    catalog: str
    description: str
    relation: tuple[str, str] | None
    relkind: str | None
    column: str | None
    generated: bool
    inherited: bool
    partition_key: bool
    name: str | None
    contype: str | None
    definition: str | None

    @property
    def described(self) -> str:
        """`description`, with why a column cannot simply be converted."""
        notes = [
            note
            for flag, note in (
                (self.via_array, "an array of it"),
                (self.generated, "generated"),
                (self.partition_key, "in the partition key"),
            )
            if flag
        ]
        return self.description + (f" ({', '.join(notes)})" if notes else "")

    @property
    def rel(self) -> str | None:
        """``schema.name`` of `relation` (as `_norm_name` spells names), or None."""
        return None if self.relation is None else ".".join(self.relation)

    @property
    def is_plain_column(self) -> bool:
        """A column of an ordinary or partitioned table, of the type itself."""
        return (
            self.catalog == "pg_class"
            and self.relkind in ("r", "p")
            and self.column is not None
            and not self.via_array
            and not self.generated
            and not self.partition_key
        )


def live_conninfo(live: Any) -> str | None:
    """The live database's connection string; None when it is not a database."""
    if live is None or hasattr(live, "selectables"):  # a results inspection
        return None
    return conninfo(live)


def type_dependents(
    live: Any, types: Iterable[tuple[str, str]]
) -> list[Dependent] | None:
    """What depends on each ``(schema, name)`` type in the live database.

    Read on a short-lived connection, rolled back and closed.  None when
    ``live`` is not a database (an inspection).

    Parameters:
        live: the live database.
        types: the types, by schema and name.
    """
    return _dependents(live, types, ())


def function_dependents(
    live: Any, functions: Iterable[tuple[str, str, str]]
) -> list[Dependent] | None:
    """What depends on each ``(schema, name, identity arguments)`` function.

    Views (their rules), column defaults, constraints, indexes, triggers,
    policies, types and functions whose bodies are parsed (``BEGIN ATOMIC``)
    that use it; each `Dependent`'s ``type_name`` is the function's
    ``schema.name(identity arguments)``.  None when ``live`` is not a
    database.

    Parameters:
        live: the live database.
        functions: the functions, by schema, name and
            ``pg_get_function_identity_arguments``.
    """
    return _dependents(live, (), functions)


def _dependents(
    live: Any,
    types: Iterable[tuple[str, str]],
    functions: Iterable[tuple[str, str, str]],
) -> list[Dependent] | None:
    info = live_conninfo(live)
    if info is None:
        return None
    pairs = list(types)
    funcs = list(functions)
    params = {
        "schemas": [p[0] for p in pairs],
        "names": [p[1] for p in pairs],
        "fschemas": [f[0] for f in funcs],
        "fnames": [f[1] for f in funcs],
        "fargs": [f[2] for f in funcs],
    }
    out: list[Dependent] = []
    with psycopg.connect(info) as conn:
        try:
            for row in conn.execute(_DEPENDENTS, params):
                (
                    tschema,
                    tname,
                    via_array,
                    catalog,
                    description,
                    rschema,
                    relname,
                    relkind,
                    column,
                    generated,
                    inherited,
                    partition_key,
                    oschema,
                    oname,
                    contype,
                    definition,
                ) = row
                relation = (rschema, relname) if relname is not None else None
                if oname is not None and oschema is not None:
                    name: str | None = f"{oschema}.{oname}"
                else:
                    name = oname
                out.append(
                    Dependent(
                        type_name=f"{tschema}.{tname}",
                        via_array=bool(via_array),
                        catalog=catalog,
                        description=description,
                        relation=relation,
                        relkind=relkind,
                        column=column,
                        generated=bool(generated),
                        inherited=bool(inherited),
                        partition_key=bool(partition_key),
                        name=name,
                        contype=contype,
                        definition=definition,
                    )
                )
        finally:
            conn.rollback()
    return out


def plain_dependent(
    type_name: str,
    catalog: str,
    description: str,
    *,
    relation: tuple[str, str] | None = None,
    relkind: str | None = None,
    column: str | None = None,
    name: str | None = None,
    contype: str | None = None,
) -> Dependent:
    return Dependent(
        type_name=type_name,
        via_array=False,
        catalog=catalog,
        description=description,
        relation=relation,
        relkind=relkind,
        column=column,
        generated=False,
        inherited=False,
        partition_key=False,
        name=name,
        contype=contype,
        definition=None,
    )


def read_live(live: Any, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    info = live_conninfo(live)
    if info is None:
        return []
    with psycopg.connect(info) as conn:
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.rollback()


def drops_of(plan: Sequence[str], dependents: Sequence[Dependent]) -> list[str]:
    """The statements of ``plan`` that drop ``dependents`` (to run them first)."""
    return [
        st for st in plan if any(PlanDrops.read([st]).covers(d) for d in dependents)
    ]


def column_obstacles(
    live: Any,
    columns: Iterable[tuple[str, str, str]],
    drops: PlanDrops,
    *,
    foreign_keys: bool = False,
) -> list[Dependent]:
    """What keeps ``ALTER COLUMN ... TYPE`` on ``columns`` from running.

    The generated columns computed from them (PostgreSQL refuses to change
    the type of a column a generated column uses) and, with
    ``foreign_keys``, the foreign keys on them (between the columns of an
    enum recreated, the old and the new enum cannot be compared), but
    those the plan drops.

    Parameters:
        live: the live database.
        columns: ``(schema, table, column)`` of the converted columns.
        drops: what the plan drops already.
        foreign_keys: name the foreign keys too.
    """
    cols = list(columns)
    if not cols:
        return []
    params = {
        "schemas": [c[0] for c in cols],
        "rels": [c[1] for c in cols],
        "cols": [c[2] for c in cols],
        "fkeys": foreign_keys,
    }
    out = []
    for row in read_live(live, _COLUMN_OBSTACLES, params):
        description, rschema, relname, relkind, column, conname, contype, of = row
        relation = (rschema, relname) if relname is not None else None
        d = plain_dependent(
            of,
            "pg_constraint" if conname is not None else "pg_attrdef",
            description + f" (on {of})",
            relation=relation,
            relkind=relkind,
            column=column,
            name=conname,
            contype=contype,
        )
        if not drops.covers(d):
            out.append(d)
    return out


@dataclass
class PlanDrops:
    """What a plan already drops, to tell which dependents are no obstacle."""

    relations: set[str]
    functions: set[str]
    types: set[str]
    indexes: set[str]
    on_tables: set[tuple[str, str]]  # (table, constraint|policy|trigger|column)

    @classmethod
    def read(cls, plan: Sequence[str]) -> PlanDrops:
        """Read the drops of ``plan``.

        Parameters:
            plan: the statements.
        """
        out = cls(set(), set(), set(), set(), set())
        for raw in plan:
            text = _strip_comments(raw)
            m = _DROP.match(text)
            if m:
                kind = _object_kind(m.group(1))
                rest = re.sub(
                    r"\s+(cascade|restrict)\s*;?\s*$|;\s*$", "", m.group(3), flags=_I
                )
                if kind in ("policy", "trigger"):
                    on = re.match(rf"({_IDENT})\s+on\s+({_QNAME})", rest.strip(), _I)
                    if on:
                        out.on_tables.add((_norm_name(on.group(2)), _bare(on.group(1))))
                    continue
                if kind == "function":
                    out.functions.add(_first_name(rest))
                    continue
                names = {_norm_name(n) for n in _split_top_level(rest)}
                if kind in ("table", "view", "materialized view", "foreign table"):
                    out.relations |= names
                elif kind in ("type", "domain"):
                    out.types |= names
                elif kind == "index":
                    out.indexes |= names
                continue
            m = re.match(
                rf"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?({_QNAME})\s+(.*)$",
                text,
                _I,
            )
            if m:
                table = _norm_name(m.group(1))
                for action in _split_top_level(m.group(2).rstrip().rstrip(";")):
                    dm = re.match(
                        rf"drop\s+(?:constraint\s+|column\s+)?(?:if\s+exists\s+)?({_IDENT})",
                        action.strip(),
                        _I,
                    )
                    if dm:
                        out.on_tables.add((table, _bare(dm.group(1))))
        return out

    def covers(self, d: Dependent) -> bool:
        """True when the plan drops ``d`` (or the relation it belongs to)."""
        if d.rel is not None and d.rel in self.relations:
            return True
        if d.catalog == "pg_proc":
            return d.name in self.functions
        if d.catalog == "pg_type":
            return d.name in self.types
        if d.catalog == "pg_class" and d.relkind in ("i", "I"):
            return d.rel in self.indexes
        if d.rel is not None:
            bare = d.column if d.column is not None else d.name
            return (d.rel, bare or "") in self.on_tables
        return False


def refuse(
    what: str,
    name: str,
    why: str,
    blockers: Sequence[Dependent],
    *,
    outside: Iterable[str] = (),
) -> None:
    """Raise the `MigrationError` that names the objects in a type change's way.

    Parameters:
        what: the kind of object changed (``enum``, ``domain``, ``function``).
        name: its ``schema.name``.
        why: what the change does to it.
        blockers: the dependents the change cannot carry.
        outside: the objects using it that lie outside the schemas the plan
            covers (``schema=``/``exclude_schema=``), described: the plan
            neither sees nor recreates them.
    """
    listed = "; ".join(sorted({d.described for d in blockers}))
    beyond = "; ".join(sorted(set(outside)))
    if not listed and not beyond:
        return
    parts = []
    if listed:
        parts.append(
            f"these objects use it: {listed}. Leave them out of the target "
            "schema (the plan then drops them; add them back in a later "
            "migration)"
        )
    if beyond:
        parts.append(
            f"these objects outside the schemas the plan covers use it: "
            f"{beyond}. Plan the schemas they are in too (a wider or no "
            "schema/exclude_schema)"
        )
    raise MigrationError(
        f"cannot plan the change of {what} {name} ({why}) while "
        + "; and ".join(parts)
        + ", or make this change by hand in a SchemaMigration"
    )
