"""Enum changes ``results`` plans badly, planned again or carried over.

- `enum_additions`: an enum that only gains values is changed with ``ALTER
  TYPE ... ADD VALUE IF NOT EXISTS``, which the plan runs before its
  transaction, instead of ``results``' recreation (a rename, a conversion of
  every column and the recreation of every view using it).
- `fix_enum_recreations`: an enum that loses or reorders values is recreated
  by ``results`` (renamed, created again, columns converted through text, the
  old copy dropped); its defaults and ``CHECK`` constraints are carried over
  the conversion (``results`` puts back the old default and leaves the checks
  to fail), and a plan the recreation cannot carry (functions, domains,
  array columns, partition keys... using the enum) is refused, naming them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from psycopg import sql

from ._type_users import (
    Dependent,
    PlanDrops,
    column_obstacles,
    refuse,
    type_dependents,
)
from ._view_users import (
    dependent_views,
    described_view,
    view_creations,
    view_drops,
    view_obstacles,
)

__all__ = ["enum_additions", "fix_enum_recreations"]


def _only_added(old: Sequence[str], new: Sequence[str]) -> bool:
    """True when ``new`` keeps every value of ``old``, in order, and adds some."""
    return len(new) > len(old) and [v for v in new if v in old] == list(old)


def _add_values(
    schema: str, name: str, old: Sequence[str], new: Sequence[str]
) -> list[str]:
    """``ALTER TYPE ... ADD VALUE IF NOT EXISTS`` statements, in the target's order.

    Each new value goes ``AFTER`` the value before it in the target (one that
    exists by then), or ``BEFORE`` the first existing value when it leads; the
    first value of an enum that had none is added without a place.
    """
    enum = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    out: list[str] = []
    previous: str | None = None
    for value in new:
        if value not in old:
            add = sql.SQL("alter type {} add value if not exists {}").format(
                enum, sql.Literal(value)
            )
            if previous is not None:
                add += sql.SQL(" after {}").format(sql.Literal(previous))
            elif old:
                add += sql.SQL(" before {}").format(sql.Literal(old[0]))
            out.append(add.as_string(None) + ";")
        previous = value
    return out


@contextlib.contextmanager
def enum_additions(i_from: Any, i_target: Any) -> Iterator[list[str]]:
    """Plan the enums that only gain values with ``ADD VALUE``, not ``results``' recreation.

    While the block runs, each live enum whose target keeps all its values in
    the same order and adds some is given the target's values in
    ``i_from``, so ``results`` sees no change (no rename, no conversion of
    its columns, no recreation of the views using it); afterwards the live
    values are put back.  The yielded list holds the ``ALTER TYPE ... ADD
    VALUE IF NOT EXISTS 'v' BEFORE|AFTER 'w'`` statements that keep the
    target's order; a plan runs them before its transaction (see
    `macrostrat.dinosaur.hazards.runs_before_transaction`).

    Parameters:
        i_from: the live inspection (changed for the block only).
        i_target: the target inspection.
    """
    statements: list[str] = []
    changed: list[tuple[Any, list[str]]] = []
    before = getattr(i_from, "enums", {})
    for key, new in getattr(i_target, "enums", {}).items():
        old = before.get(key)
        if old is None or not _only_added(old.elements, new.elements):
            continue
        statements.extend(_add_values(old.schema, old.name, old.elements, new.elements))
        changed.append((old, old.elements))
        old.elements = list(new.elements)
    try:
        yield statements
    finally:
        for old, elements in changed:
            old.elements = elements


def _recreated_enums(i_from: Any, i_target: Any) -> dict[str, tuple[Any, Any]]:
    """The enums ``results`` recreates: values removed, renamed or reordered."""
    out = {}
    before = getattr(i_from, "enums", {})
    for key, new in getattr(i_target, "enums", {}).items():
        old = before.get(key)
        if old is None or list(old.elements) == list(new.elements):
            continue
        if not _only_added(old.elements, new.elements):
            out[key] = (old, new)
    return out


def _qualified_rel(name: str) -> sql.Composed:
    schema, _, rel = name.partition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(rel))


def fix_enum_recreations(
    statements: Sequence[str], i_from: Any, i_target: Any, *, live: Any = None
) -> list[str]:
    """Carry ``results``' recreation of an enum over defaults and checks, or refuse it.

    PostgreSQL cannot remove or reorder enum values, so ``results`` renames
    the enum to ``<name>__old_version_to_be_dropped``, creates it again,
    converts each column (``USING col::text::enum``) and drops the old copy.
    Here each conversion becomes: drop the column's default and the table's
    ``CHECK`` constraints that use the enum, convert, then set the target's
    default and add the checks again (``results`` puts back the *old*
    default, ``None`` when there was none, and leaves the checks to fail).
    The conversions of inherited columns go (their parent's converts them).

    Parameters:
        statements: the plan.
        i_from: the live inspection.
        i_target: the target inspection.
        live: the live database, read for what uses the enum; None (or an
            inspection) skips the check and the constraints.

    Raises:
        MigrationError: an object the conversion cannot carry uses the enum
            (a function, a domain or composite type, an array or generated
            column, a partition key, an index expression, a policy...) and
            the plan does not drop it, or an object outside the schemas the
            plan covers uses it (in a schema ``i_from`` does not have: the
            plan neither converts nor recreates it); the message names the
            enum and them.
    """
    recreated = _recreated_enums(i_from, i_target)
    if not recreated:
        return list(statements)
    names = {
        f"{old.schema}.{old.name}": (old.schema, old.name)
        for old, _ in recreated.values()
    }
    dependents = type_dependents(live, names.values()) or []
    drops = PlanDrops.read(statements)
    # the schemas the plan covers (``schema=``/``exclude_schema=``)
    covered = {x.schema for x in getattr(i_from, "schemas", {}).values()}

    def beyond(schema: str) -> bool:
        return bool(covered) and schema not in covered

    inherited: set[tuple[str, str]] = set()
    checks: dict[str, list[Dependent]] = {}  # by table
    blockers: list[Dependent] = []
    columns_of: dict[str, list[tuple[str, str, str]]] = {}  # by enum
    outside: dict[str, list[str]] = {}  # by enum: what the plan does not see
    for d in dependents:
        if drops.covers(d) or (d.catalog == "pg_attrdef" and not d.generated):
            continue
        if d.relation is not None and beyond(d.relation[0]):
            # outside the plan's schemas: results neither converts nor recreates it
            outside.setdefault(d.type_name, []).append(d.described)
            continue
        if d.is_plain_column:
            if d.inherited and d.rel and d.column:
                inherited.add((d.rel, d.column))
            if d.relation is not None and d.column is not None:
                columns_of.setdefault(d.type_name, []).append((*d.relation, d.column))
        elif d.catalog == "pg_constraint" and d.contype == "c" and d.rel:
            if not d.inherited:  # a partition's copy goes and comes with its parent's
                checks.setdefault(d.rel, []).append(d)
        else:
            blockers.append(d)
    # results' conversions, by table (``schema.name``), in plan order
    recasts: dict[str, list[tuple[str, str, Any, Any]]] = {}
    for key, v in getattr(i_target, "tables", {}).items():
        t_before = getattr(i_from, "tables", {}).get(key)
        if t_before is None:
            continue
        table = f"{v.schema}.{v.name}"
        for cname, c in v.columns.items():
            b = t_before.columns.get(cname)
            if b is None or not (c.is_enum and b.is_enum) or c.enum is None:
                continue
            if c.enum.quoted_full_name not in recreated or c.dbtypestr != b.dbtypestr:
                continue
            recast = c.change_enum_statement(key)
            if recast in statements and (table, cname) not in inherited:
                recasts.setdefault(table, []).append((recast, key, c, b))
            elif recast in statements:
                recasts.setdefault(table, [])
                recasts[table].insert(0, (recast, key, None, b))
    # a check on a table without a conversion cannot be put back around one
    blockers += [
        d
        for table, found in checks.items()
        if not any(c is not None for _, _, c, _ in recasts.get(table, []))
        for d in found
    ]
    why = (
        "values removed, renamed or reordered: the enum is recreated and its "
        "columns converted"
    )
    for type_name, (tschema, tname) in names.items():
        views = dependent_views(live, (tschema, tname)) if live is not None else []
        refuse(
            "enum",
            type_name,
            why,
            [d for d in blockers if d.type_name == type_name]
            + view_obstacles(live, views, drops)
            + column_obstacles(
                live, columns_of.get(type_name, []), drops, foreign_keys=True
            ),
            outside=outside.get(type_name, ()),
        )
    out = list(statements)
    # results drops the views using the enum, not the views on those
    dropped = [r.partition(".")[::2] for r in sorted(drops.relations)]
    above = [
        v
        for v in (dependent_views(live, relations=dropped) if dropped else [])
        if f"{v[0]}.{v[1]}" not in drops.relations
    ]
    refuse(
        "enum",
        ", ".join(names),
        why,
        [],
        outside=[described_view(v) for v in above if beyond(v[0])],
    )
    if above:
        out = [*view_drops(above), *out, *view_creations(above, i_target)]
    for table, items in recasts.items():
        converted = [i for i, item in enumerate(items) if item[2] is not None]
        table_checks = {d.name or "": d.definition or "" for d in checks.get(table, [])}
        for i, (recast, key, c, b) in enumerate(items):
            olds = {b.drop_default_statement(key), b.add_default_statement(key)}
            at = out.index(recast)
            out = [s for j, s in enumerate(out) if j == at or s not in olds]
            at = out.index(recast)
            if c is None:  # an inherited column: its parent's conversion does it
                del out[at]
                continue
            out[at : at + 1] = _recast(
                key,
                table,
                c,
                b,
                table_checks,
                drop_checks=i == converted[0],
                add_checks=i == converted[-1],
            )
    return out


def _recast(
    key: str,
    table: str,
    c: Any,
    b: Any,
    checks: dict[str, str],
    *,
    drop_checks: bool,
    add_checks: bool,
) -> list[str]:
    """One enum column's conversion, with its default and its table's checks around it.

    Parameters:
        key: the table's key in the inspections (its quoted full name).
        table: ``schema.name`` of the table.
        c: the target's column.
        b: the live column.
        checks: the table's ``CHECK`` constraints that use the enum, by name.
        drop_checks: drop them first (the table's first conversion).
        add_checks: add them back after (the table's last conversion).
    """
    rel = _qualified_rel(table)
    column = sql.Identifier(c.name)
    enum = sql.SQL(c.enum.quoted_full_name)
    out: list[str] = []
    for cname in sorted(checks) if drop_checks else ():
        out.append(
            sql.SQL("alter table {} drop constraint {};")
            .format(rel, sql.Identifier(cname))
            .as_string(None)
        )
    if b.default is not None and not b.is_generated:
        out.append(b.drop_default_statement(key))
    out.append(
        sql.SQL("alter table {} alter column {} type {} using {}::text::{};")
        .format(rel, column, enum, column, enum)
        .as_string(None)
    )
    if c.default is not None and not c.is_generated:
        out.append(c.add_default_statement(key))
    for cname in sorted(checks) if add_checks else ():
        out.append(
            sql.SQL("alter table {} add constraint {} {};")
            .format(rel, sql.Identifier(cname), sql.SQL(checks[cname]))
            .as_string(None)
        )
    return out
