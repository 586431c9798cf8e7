"""The views a type recreation drops and creates again, and what stops it.

When an enum or domain is recreated (`macrostrat.dinosaur._enums`,
`macrostrat.dinosaur._domains`) or a function dropped and created again
(`macrostrat.dinosaur._functions`), the views on what changes must go first
and come back after, from the target:

- `dependent_views`: the views on a type's table columns (or on given
  relations), and the views on those, nearest first;
- `view_obstacles`: what keeps them from being dropped and created again
  (rules ``results`` cannot read back; functions, columns or types using
  their row type);
- `view_drops` and `view_creations`: the statements, the creations with the
  target's comments, column comments, triggers and indexes;
- `described_view` names a view in an error message.

The lookups of `macrostrat.dinosaur._type_users` (`Dependent`, `PlanDrops`,
the live connection) are shared with the type and function checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ._type_users import (
    Dependent,
    PlanDrops,
    live_conninfo,
    plain_dependent,
    read_live,
    results_key,
)

__all__ = [
    "dependent_views",
    "described_view",
    "view_creations",
    "view_drops",
    "view_obstacles",
]


_VIEWS_ON = """
WITH RECURSIVE cols AS (
  SELECT a.attrelid, a.attnum
  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_namespace n ON n.oid = t.typnamespace
  JOIN pg_class c ON c.oid = a.attrelid
  WHERE n.nspname = %(schema)s AND t.typname = %(name)s
    AND c.relkind IN ('r', 'p') AND NOT a.attisdropped
), rels AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS w(nspname, relname)
    ON w.nspname = n.nspname AND w.relname = c.relname
), views(oid, depth) AS (
  SELECT DISTINCT rw.ev_class, 1
  FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
    AND rw.ev_class <> d.refobjid
    AND ((d.refobjid, d.refobjsubid) IN (SELECT attrelid, attnum FROM cols)
         OR d.refobjid IN (SELECT oid FROM rels))
  UNION
  SELECT rw.ev_class, v.depth + 1
  FROM views v JOIN pg_depend d
    ON d.refclassid = 'pg_class'::regclass AND d.refobjid = v.oid
  JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
  WHERE rw.ev_class <> v.oid AND v.depth < 50
)
SELECT n.nspname, c.relname, c.relkind, max(v.depth)
FROM views v JOIN pg_class c ON c.oid = v.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
GROUP BY 1, 2, 3
ORDER BY 4, 1, 2
"""


# What stands in the way of dropping and creating views again: their rules
# (``results`` does not inspect them) and the objects using their row types.

_VIEW_OBSTACLES = """
WITH v AS (
  SELECT c.oid, c.reltype, t.typarray, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type t ON t.oid = c.reltype
  JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS w(nspname, relname)
    ON w.nspname = n.nspname AND w.relname = c.relname
)
SELECT v.nspname || '.' || v.relname, 'pg_rewrite',
       pg_describe_object('pg_rewrite'::regclass, rw.oid, 0),
       NULL, NULL, NULL, NULL, NULL, rw.rulename
FROM v JOIN pg_rewrite rw ON rw.ev_class = v.oid AND rw.rulename <> '_RETURN'
UNION ALL
SELECT v.nspname || '.' || v.relname, d.classid::regclass::text,
       pg_describe_object(d.classid, d.objid, d.objsubid),
       rn.nspname, rel.relname, rel.relkind, att.attname,
       coalesce(pn.nspname, tn.nspname), coalesce(p.proname, tt.typname)
FROM v JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass
  AND d.refobjid IN (v.reltype, v.typarray) AND d.deptype IN ('n', 'a')
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
LEFT JOIN pg_type tt ON d.classid = 'pg_type'::regclass AND tt.oid = d.objid
LEFT JOIN pg_namespace tn ON tn.oid = tt.typnamespace
LEFT JOIN pg_class rel ON d.classid = 'pg_class'::regclass AND rel.oid = d.objid
LEFT JOIN pg_namespace rn ON rn.oid = rel.relnamespace
LEFT JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum = d.objsubid
ORDER BY 1, 3
"""

# What ``ALTER COLUMN ... TYPE`` on the given columns cannot carry: the
# generated columns computed from them and (asked for) the foreign keys on them.


def dependent_views(
    live: Any,
    type_name: tuple[str, str] | None = None,
    relations: Iterable[tuple[str, str]] = (),
) -> list[tuple[str, str, str]]:
    """The views on the table columns of a type or on relations, and the views on those.

    Parameters:
        live: the live database.
        type_name: ``(schema, name)`` of the type whose columns are meant.
        relations: ``(schema, name)`` of the relations (views) meant.

    Returns:
        ``(schema, name, relkind)`` of each, nearest first.
    """
    info = live_conninfo(live)
    if info is None:
        return []
    pairs = list(relations)
    params = {
        "schema": type_name[0] if type_name else None,
        "name": type_name[1] if type_name else None,
        "schemas": [p[0] for p in pairs],
        "names": [p[1] for p in pairs],
    }
    with psycopg.connect(info) as conn:
        try:
            rows = conn.execute(_VIEWS_ON, params).fetchall()
        finally:
            conn.rollback()
    return [(r[0], r[1], r[2]) for r in rows]


def view_obstacles(
    live: Any,
    views: Sequence[tuple[str, str, str]],
    drops: PlanDrops,
    covered: list[Dependent] | None = None,
) -> list[Dependent]:
    """What keeps ``views`` from being dropped and created again.

    Their rules other than ``_RETURN`` (``results`` does not read rules, so
    they could not be created again) and the objects using their row types
    (a function returning ``SETOF`` the view or taking a row of it, a column
    or a type of it: ``DROP VIEW`` fails), but those the plan drops.

    Parameters:
        live: the live database.
        views: ``(schema, name, relkind)`` of the views.
        drops: what the plan drops already.
        covered: given, receives the row type users the plan drops (their
            drops must run before the views'; see `drops_of`).
    """
    if not views:
        return []
    params = {"schemas": [v[0] for v in views], "names": [v[1] for v in views]}
    recreated = {f"{v[0]}.{v[1]}" for v in views}
    out = []
    for row in read_live(live, _VIEW_OBSTACLES, params):
        view, catalog, description, rschema, relname, relkind, column, osch, oname = row
        relation = (rschema, relname) if relname is not None else None
        name = f"{osch}.{oname}" if osch is not None else oname
        if catalog != "pg_rewrite":
            description += f" (uses the row type of view {view})"
        d = plain_dependent(
            view,
            catalog,
            description,
            relation=relation,
            relkind=relkind,
            column=column,
            name=name,
        )
        if d.rel in recreated:
            continue
        if catalog != "pg_rewrite" and drops.covers(d):
            if covered is not None:
                covered.append(d)
            continue
        out.append(d)
    return out


def view_drops(views: Sequence[tuple[str, str, str]]) -> list[str]:
    """``DROP VIEW`` statements for ``views`` (as ``results`` writes them), farthest first."""
    out = []
    for schema, rel, kind in reversed(views):
        word = "materialized view" if kind == "m" else "view"
        out.append(
            sql.SQL("drop " + word + " if exists {}.{};")
            .format(sql.Identifier(schema), sql.Identifier(rel))
            .as_string(None)
        )
    return out


def view_creations(views: Sequence[tuple[str, str, str]], i_target: Any) -> list[str]:
    """The target's definitions of ``views``, comments, triggers and indexes.

    Each view comes with its comment and its columns', its triggers
    (``INSTEAD OF``...) and a materialized view's indexes.  A view the target
    does not have is left out (it is only dropped).
    """
    selectables = getattr(i_target, "selectables", {})
    indexes = list(getattr(i_target, "indexes", {}).values())
    triggers = list(getattr(i_target, "triggers", {}).values())
    out: list[str] = []
    for schema, rel, _kind in views:
        key = results_key(schema, rel)
        view = selectables.get(key)
        if view is None:
            continue
        out.append(view.create_statement)
        if view.comment is not None and view.comment_statement:
            out.append(view.comment_statement)
        for column in getattr(view, "columns", {}).values():
            if getattr(column, "comment", None) is not None:
                out.append(column.comment_statement(key))
        out.extend(
            t.create_statement
            for t in triggers
            if (t.schema, t.table_name) == (schema, rel)
        )
        out.extend(
            ix.create_statement
            for ix in indexes
            if (ix.schema, ix.table_name) == (schema, rel)
        )
    return out


def described_view(view: tuple[str, str, str]) -> str:
    """``view s.v`` or ``materialized view s.v``, for an error message."""
    schema, rel, kind = view
    return ("materialized view " if kind == "m" else "view ") + f"{schema}.{rel}"
