"""The catalog facts a migration plan is ordered and corrected by.

`read_catalog` reads, on a short-lived connection in one rolled-back
transaction, what ``results``' inspection does not give or gets wrong:

- the dependency graph between user objects, from ``pg_depend`` (which covers
  constraints, column defaults, generated columns, view rules in
  ``pg_rewrite``, triggers and policies), ``pg_inherits`` (partitions) and
  ``pg_constraint`` (foreign keys and the indexes they rely on), with every
  object named by an `ObjectKey` string;
- the objects PostgreSQL makes by itself on partitions (indexes attached to a
  partitioned index, constraints cloned from the parent, cloned triggers),
  which a plan must never create or drop on its own;
- the partitioned tables and the definitions of their constraints;
- domains in every schema (``results`` only sees those on the search path);
- composite types in every schema, with their attributes (``results`` only
  sees those on the search path, and never changes their attributes);
- estimated row counts, for the hazards of dropping tables.

Object keys are plain strings ``kind:identity`` with unquoted names:
``rel:schema.name`` (tables, partitions, views, materialized views,
sequences), ``index:schema.name``, ``type:schema.name`` (enums, domains,
composite types), ``function:schema.name(identity arguments)``,
``constraint:schema.table.name``, ``trigger:schema.table.name``,
``policy:schema.table.name``, ``schema:name``, ``extension:name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import psycopg

__all__ = [
    "Catalog",
    "Composite",
    "Domain",
    "ObjectKey",
    "in_scope",
    "read_catalog",
    "scoped",
]

ObjectKey = str
"""``kind:identity``, see the module documentation."""


class _InSchema(Protocol):
    @property
    def schema(self) -> str: ...


_Named = TypeVar("_Named", bound=_InSchema)

_SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"

# The key of every user object that a plan statement can make, by
# (catalog, oid); ``kind`` says how the key is formed.  Sub-objects (columns)
# collapse onto their relation, column defaults onto their table, view rules
# onto their view, array and row types onto their element or relation.
_OBJECTS = f"""
SELECT 'pg_class'::regclass::oid, c.oid,
       CASE WHEN c.relkind IN ('i', 'I') THEN 'index:' ELSE 'rel:' END
       || n.nspname || '.' || c.relname, NULL::oid, NULL::oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind <> 'c' AND n.nspname NOT IN {_SYSTEM}
UNION ALL
SELECT 'pg_class'::regclass::oid, c.oid, 'type:' || n.nspname || '.' || c.relname,
       NULL, NULL
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'c' AND n.nspname NOT IN {_SYSTEM}
UNION ALL
SELECT 'pg_type'::regclass::oid, t.oid, 'type:' || n.nspname || '.' || t.typname,
       nullif(t.typrelid, 0),
       CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN {_SYSTEM}
UNION ALL
SELECT 'pg_proc'::regclass::oid, p.oid,
       'function:' || n.nspname || '.' || p.proname || '('
       || pg_get_function_identity_arguments(p.oid) || ')', NULL, NULL
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN {_SYSTEM}
  AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass
                  AND e.objid = p.oid AND e.deptype = 'e')
UNION ALL
SELECT 'pg_constraint'::regclass::oid, c.oid,
       'constraint:' || n.nspname || '.' || r.relname || '.' || c.conname,
       NULL, nullif(c.contypid, 0)
FROM pg_constraint c
LEFT JOIN pg_class r ON r.oid = c.conrelid
LEFT JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contypid <> 0 OR n.nspname NOT IN {_SYSTEM}
UNION ALL
SELECT 'pg_attrdef'::regclass::oid, d.oid, NULL, d.adrelid, NULL FROM pg_attrdef d
UNION ALL
SELECT 'pg_rewrite'::regclass::oid, r.oid, NULL, r.ev_class, NULL FROM pg_rewrite r
UNION ALL
SELECT 'pg_trigger'::regclass::oid, t.oid,
       'trigger:' || n.nspname || '.' || c.relname || '.' || t.tgname, NULL, NULL
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN {_SYSTEM}
UNION ALL
SELECT 'pg_policy'::regclass::oid, p.oid,
       'policy:' || n.nspname || '.' || c.relname || '.' || p.polname, NULL, NULL
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
UNION ALL
SELECT 'pg_namespace'::regclass::oid, oid, 'schema:' || nspname, NULL, NULL
FROM pg_namespace WHERE nspname NOT IN {_SYSTEM}
UNION ALL
SELECT 'pg_extension'::regclass::oid, oid, 'extension:' || extname, NULL, NULL
FROM pg_extension
"""

# Dependencies between objects; members of extensions are left out.
_DEPENDS = """
SELECT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype,
       (d.classid = 'pg_class'::regclass
        AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S')
FROM pg_depend d
WHERE d.deptype IN ('n', 'a', 'i') AND d.classid <> 0
  AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.deptype = 'e'
                  AND e.classid = d.classid AND e.objid = d.objid)
"""

_INHERITS = f"""
SELECT CASE WHEN c.relkind IN ('i', 'I') THEN 'index:' ELSE 'rel:' END
       || n.nspname || '.' || c.relname,
       CASE WHEN c.relkind IN ('i', 'I') THEN 'index:' ELSE 'rel:' END
       || pn.nspname || '.' || p.relname
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN {_SYSTEM}
"""

_CONSTRAINTS = f"""
SELECT n.nspname, r.relname, c.conname, c.contype, r.relkind,
       c.conparentid <> 0 OR (c.coninhcount > 0 AND NOT c.conislocal),
       pg_get_constraintdef(c.oid),
       c.convalidated,
       (SELECT ix.relname FROM pg_class ix WHERE ix.oid = c.conindid AND c.contype IN ('p', 'u', 'x'))
FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE n.nspname NOT IN {_SYSTEM}
"""

_TRIGGERS = f"""
SELECT n.nspname, c.relname, t.tgname
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgparentid <> 0 AND n.nspname NOT IN {_SYSTEM}
"""

_RELATIONS = f"""
SELECT n.nspname, c.relname, c.relkind, c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
  AND n.nspname NOT IN {_SYSTEM}
"""

_INDEXES = f"""
SELECT n.nspname || '.' || i.relname, tn.nspname || '.' || t.relname
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname NOT IN {_SYSTEM}
"""

_DOMAINS = f"""
SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod),
       (SELECT format('%I.%I', cn.nspname, co.collname)
         FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
         WHERE co.oid = t.typcollation AND t.typcollation <> b.typcollation),
       t.typdefault, t.typnotnull,
       coalesce((SELECT array_agg(array[c.conname::text, pg_get_constraintdef(c.oid)]
                                  ORDER BY c.conname)
                 FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'),
                '{{}}')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typtype = 'd' AND n.nspname NOT IN {_SYSTEM}
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_COMPOSITES = f"""
WITH RECURSIVE composite AS (
  SELECT t.oid, t.typarray, n.nspname, t.typname, c.oid AS relid
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
  WHERE n.nspname NOT IN {_SYSTEM}
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                    AND d.objid = t.oid AND d.deptype = 'e')
), edge(inner_type, outer_type) AS (
  -- arrays, domains and ranges over a type; composite types and views with
  -- an attribute of it (PostgreSQL follows the same links)
  SELECT d.refobjid, d.objid FROM pg_depend d
  WHERE d.classid = 'pg_type'::regclass AND d.refclassid = 'pg_type'::regclass
  UNION
  SELECT a.atttypid, r.reltype FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
  WHERE r.relkind IN ('c', 'v') AND r.reltype <> 0 AND a.attnum > 0
    AND NOT a.attisdropped
), holder(root, typ) AS (
  SELECT oid, oid FROM composite
  UNION
  SELECT h.root, e.outer_type FROM holder h JOIN edge e ON e.inner_type = h.typ
), pin(root, what) AS (
  -- what makes PostgreSQL refuse ALTER ATTRIBUTE ... TYPE: a column of a
  -- holder (not a view's, not a composite type's), or an expression using
  -- one (rule, default, constraint, policy, index, function body)
  SELECT h.root, pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM holder h JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass
    AND d.refobjid = h.typ AND d.deptype IN ('n', 'a')
  LEFT JOIN pg_class r ON d.classid = 'pg_class'::regclass AND r.oid = d.objid
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  WHERE d.classid <> 'pg_type'::regclass
    AND NOT (d.classid = 'pg_proc'::regclass AND to_jsonb(p) ->> 'prosqlbody' IS NULL)
    AND NOT (d.classid = 'pg_class'::regclass AND (r.relkind IN ('c', 'v')
         OR (d.objsubid = 0 AND NOT EXISTS (
             SELECT FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0
               AND NOT a.attisdropped AND a.atttypid = h.typ))))
)
SELECT c.nspname, c.typname, obj_description(c.oid, 'pg_type'),
       coalesce((SELECT array_agg(array[
           a.attname::text, format_type(a.atttypid, a.atttypmod),
           (SELECT format('%I.%I', cn.nspname, co.collname)
            FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
            WHERE co.oid = a.attcollation
              AND a.attcollation <> (SELECT typcollation FROM pg_type
                                     WHERE oid = a.atttypid))] ORDER BY a.attnum)
         FROM pg_attribute a
         WHERE a.attrelid = c.relid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
       ARRAY(SELECT DISTINCT what FROM pin WHERE pin.root = c.oid ORDER BY 1),
       coalesce((SELECT array_agg(DISTINCT array[a.attname::text,
                    pg_describe_object(d.classid, d.objid, d.objsubid)])
         FROM pg_depend d JOIN pg_attribute a
           ON a.attrelid = c.relid AND a.attnum = d.refobjsubid
         WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.relid
           AND d.refobjsubid > 0 AND d.deptype IN ('n', 'a')), '{{}}'),
       coalesce((SELECT array_agg(array[rn.nspname::text, r.relname::text,
                                        a.attname::text] ORDER BY 1)
         FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
         JOIN pg_namespace rn ON rn.oid = r.relnamespace
         WHERE a.atttypid IN (c.oid, c.typarray) AND a.attnum > 0
           AND NOT a.attisdropped AND r.relkind <> 'c'), '{{}}'),
       ARRAY(SELECT rn.nspname || '.' || r.relname FROM pg_class r
             JOIN pg_namespace rn ON rn.oid = r.relnamespace
             WHERE r.reloftype = c.oid ORDER BY 1)
FROM composite c
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Composite:
    """A composite type (``CREATE TYPE … AS (…)``) as the catalog describes it.

    Attributes:
        schema: its schema.
        name: its name.
        comment: its comment, or None.
        attributes: ``(name, type, collation or None)`` in declared order;
            the type as ``format_type`` spells it, the collation (quoted,
            with its schema) only when it differs from the type's.
        pinned_by: what makes PostgreSQL refuse ``ALTER ATTRIBUTE … TYPE``
            (``pg_describe_object``'s words, sorted): the columns of tables,
            materialized views, foreign tables and indexes holding its values
            (of the type, an array of it, a domain over it, or a composite
            type or view holding one, at any depth), and the rules, defaults,
            constraints, policies and ``BEGIN ATOMIC`` function bodies using
            it or such a type.  Empty: the type is in use nowhere.
        attribute_users: ``(attribute, what)`` for each object that uses one
            attribute by name (``(p).a`` in a view, a default, a constraint...),
            which PostgreSQL refuses to drop or change the type of.
        columns: ``(schema, relation, column)`` of the columns (of tables,
            views, materialized views, foreign tables) of the type itself or
            an array of it.
        typed_tables: ``schema.name`` of the tables made ``OF`` the type
            (their columns follow its attributes: ``ALTER TYPE`` needs
            ``CASCADE``).
    """

    schema: str
    name: str
    comment: str | None
    attributes: tuple[tuple[str, str, str | None], ...]
    pinned_by: tuple[str, ...] = ()
    attribute_users: tuple[tuple[str, str], ...] = ()
    columns: tuple[tuple[str, str, str], ...] = ()
    typed_tables: tuple[str, ...] = ()

    @property
    def key(self) -> ObjectKey:
        """The type's object key."""
        return f"type:{self.schema}.{self.name}"


@dataclass(frozen=True)
class Domain:
    """A domain as the catalog describes it.

    Attributes:
        schema: its schema.
        name: its name.
        base_type: the base type, as ``format_type`` spells it.
        collation: its collation (quoted) when it differs from the base type's.
        default: the default expression, or None.
        not_null: whether it is ``NOT NULL``.
        checks: ``(constraint name, definition)`` pairs, sorted by name.
    """

    schema: str
    name: str
    base_type: str
    collation: str | None
    default: str | None
    not_null: bool
    checks: tuple[tuple[str, str], ...]

    @property
    def key(self) -> ObjectKey:
        """The domain's object key."""
        return f"type:{self.schema}.{self.name}"


@dataclass
class Catalog:
    """What `read_catalog` found in one database.

    Attributes:
        depends: for each object key, the keys it depends on.
        partition_parent: for each partition (table or index), its parent.
        relkinds: ``relkind`` of each relation and index key.
        row_estimates: ``reltuples`` of each table key (-1: never analysed).
        inherited_constraints: ``(schema, table, name)`` of the constraints
            PostgreSQL clones onto partitions (and inherited CHECKs).
        cloned_triggers: ``(schema, table, name)`` of triggers cloned onto
            partitions.
        constraint_defs: ``pg_get_constraintdef`` of every constraint.
        constraint_types: ``contype`` of every constraint.
        domains: every domain, by key.
        composites: every composite type, by key.
        owners: the table that owns each index and sequence (``schema.name``
            both sides), for the hazards of dropping a table.
        backing: each primary key, unique and exclusion constraint's index and
            each such index's constraint (both ways).
    """

    depends: dict[ObjectKey, set[ObjectKey]] = field(default_factory=dict)
    partition_parent: dict[ObjectKey, ObjectKey] = field(default_factory=dict)
    relkinds: dict[ObjectKey, str] = field(default_factory=dict)
    row_estimates: dict[ObjectKey, int] = field(default_factory=dict)
    inherited_constraints: set[tuple[str, str, str]] = field(default_factory=set)
    cloned_triggers: set[tuple[str, str, str]] = field(default_factory=set)
    constraint_defs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    constraint_types: dict[tuple[str, str, str], str] = field(default_factory=dict)
    domains: dict[ObjectKey, Domain] = field(default_factory=dict)
    composites: dict[ObjectKey, Composite] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    backing: dict[ObjectKey, ObjectKey] = field(default_factory=dict)

    def is_partitioned(self, table: ObjectKey) -> bool:
        """True when ``table`` (a ``rel:`` key) is a partitioned table."""
        return self.relkinds.get(table) == "p"

    def is_inherited_index(self, index: ObjectKey) -> bool:
        """True when ``index`` is attached to a partitioned index."""
        return index in self.partition_parent and index.startswith("index:")

    def dependents_of(self) -> dict[ObjectKey, set[ObjectKey]]:
        """The reverse of `depends`: for each key, the keys that depend on it."""
        out: dict[ObjectKey, set[ObjectKey]] = {}
        for key, refs in self.depends.items():
            for ref in refs:
                out.setdefault(ref, set()).add(key)
        return out


def in_scope(schema: str, only: str | None, exclude: str | None) -> bool:
    """Whether a plan limited to ``only`` (or leaving out ``exclude``) covers ``schema``."""
    if only is not None:
        return schema == only
    return schema != exclude


def scoped(
    objects: Mapping[ObjectKey, _Named], only: str | None, exclude: str | None
) -> dict[ObjectKey, _Named]:
    """The ``objects`` (domains, composite types...) whose schema `in_scope` covers."""
    return {k: o for k, o in objects.items() if in_scope(o.schema, only, exclude)}


def read_catalog(source: str | psycopg.Connection[Any]) -> Catalog:
    """Read the dependency graph and partition facts of one database.

    Given a connection string, the catalog is read on a new connection in one
    transaction, rolled back and closed before returning; given an open
    connection, it is read in that connection's transaction, which is left
    to the caller.

    Parameters:
        source: a libpq connection string, or an open psycopg connection.
    """
    cat = Catalog()
    if not isinstance(source, str):
        _read(source, cat)
        return cat
    with psycopg.connect(source) as conn:
        try:
            _read(conn, cat)
        finally:
            conn.rollback()
    return cat


def _catalog_oid(conn: psycopg.Connection[Any], catalog: str) -> int:
    """The OID of the system catalog ``catalog`` (``pg_class``...)."""
    row = conn.execute("SELECT %s::regclass::oid", (catalog,)).fetchone()
    if row is None:  # a SELECT without FROM returns one row
        raise RuntimeError(f"no OID for {catalog}")
    return int(row[0])


def _read(conn: psycopg.Connection[Any], cat: Catalog) -> None:
    pg_class = _catalog_oid(conn, "pg_class")
    pg_type = _catalog_oid(conn, "pg_type")
    pg_constraint = _catalog_oid(conn, "pg_constraint")
    direct: dict[tuple[int, int], str | None] = {}
    via: dict[tuple[int, int], tuple[int, int]] = {}
    for classid, objid, key, rel, elem in conn.execute(_OBJECTS):
        if rel is not None:
            via[(classid, objid)] = (pg_class, rel)
        elif elem is not None:
            via[(classid, objid)] = (pg_type, elem)
        direct[(classid, objid)] = key

    def key_of(classid: int, objid: int, depth: int = 0) -> str | None:
        link = via.get((classid, objid))
        if link is not None and depth < 4:
            return key_of(link[0], link[1], depth + 1)
        return direct.get((classid, objid))

    for classid, objid, refclassid, refobjid, deptype, is_sequence in conn.execute(
        _DEPENDS
    ):
        if is_sequence and deptype in ("a", "i") and refclassid == pg_class:
            # a sequence owned by a column: ALTER SEQUENCE ... OWNED BY
            seq, owner = key_of(classid, objid), key_of(refclassid, refobjid)
            if seq and owner:
                cat.owners[seq.split(":", 1)[1]] = owner.split(":", 1)[1]
            continue
        if deptype == "i" and classid == pg_class and refclassid == pg_constraint:
            continue  # the index behind a constraint is made with it
        dependent = key_of(classid, objid)
        referenced = key_of(refclassid, refobjid)
        if dependent and referenced and dependent != referenced:
            cat.depends.setdefault(dependent, set()).add(referenced)
    for child, parent in conn.execute(_INHERITS):
        cat.partition_parent[child] = parent
        cat.depends.setdefault(child, set()).add(parent)
    for schema, rel, kind, tuples in conn.execute(_RELATIONS):
        prefix = "index:" if kind in ("i", "I") else "rel:"
        key = f"{prefix}{schema}.{rel}"
        cat.relkinds[key] = kind
        if kind in ("r", "p", "m"):
            cat.row_estimates[key] = int(tuples)
    for row in conn.execute(_CONSTRAINTS):
        schema, table, name, contype, _relkind, inherited, definition, _valid, index = (
            row
        )
        ident = (schema, table, name)
        if index is not None:
            ckey, ikey = (
                f"constraint:{schema}.{table}.{name}",
                f"index:{schema}.{index}",
            )
            cat.backing[ckey] = ikey
            cat.backing[ikey] = ckey
        cat.constraint_defs[ident] = definition
        cat.constraint_types[ident] = contype
        if inherited:
            cat.inherited_constraints.add(ident)
    for index, table in conn.execute(_INDEXES):
        cat.owners[index] = table
    for schema, table, name in conn.execute(_TRIGGERS):
        cat.cloned_triggers.add((schema, table, name))
    for row in conn.execute(_DOMAINS):
        schema, name, base, collation, default, not_null, checks = row
        d = Domain(
            schema=schema,
            name=name,
            base_type=base,
            collation=collation,
            default=default,
            not_null=bool(not_null),
            checks=tuple((c[0], c[1]) for c in checks),
        )
        cat.domains[d.key] = d
    for row in conn.execute(_COMPOSITES):
        schema, name, comment, attributes, pins, users, columns, typed = row
        c = Composite(
            schema=schema,
            name=name,
            comment=comment,
            attributes=tuple((a[0], a[1], a[2]) for a in attributes),
            pinned_by=tuple(pins),
            attribute_users=tuple(sorted((u[0], u[1]) for u in users)),
            columns=tuple((k[0], k[1], k[2]) for k in columns),
            typed_tables=tuple(typed),
        )
        cat.composites[c.key] = c
