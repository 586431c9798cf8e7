"""Domains in every schema: created, altered constraint by constraint, dropped.

``results`` sees only the domains on the search path, and plans a changed
domain as a drop and a create, which PostgreSQL refuses while a column uses
it.  `domain_statements` compares the domains of both catalogs instead: a new
domain is created, a changed one altered (default, ``NOT NULL``, each check),
a removed one dropped, and one whose base type (or collation) changes is
recreated with its columns converted (`_domain_swap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from ._depends import Catalog, Domain, in_scope, scoped
from ._type_users import (
    Dependent,
    PlanDrops,
    column_obstacles,
    drops_of,
    refuse,
    results_key,
    type_dependents,
)
from ._view_users import (
    dependent_views,
    described_view,
    view_creations,
    view_drops,
    view_obstacles,
)
from .hazards import _OLD_COPY

__all__ = ["domain_statements"]


def _domain_create(d: Domain) -> str:
    parts: list[sql.Composable] = [
        sql.SQL("create domain {}.{} as {}").format(
            sql.Identifier(d.schema), sql.Identifier(d.name), sql.SQL(d.base_type)
        )
    ]
    if d.collation:
        parts.append(sql.SQL("collate {}").format(sql.SQL(d.collation)))
    if d.default is not None:
        parts.append(sql.SQL("default {}").format(sql.SQL(d.default)))
    if d.not_null:
        parts.append(sql.SQL("not null"))
    for name, definition in d.checks:
        parts.append(
            sql.SQL("constraint {} {}").format(
                sql.Identifier(name), sql.SQL(definition)
            )
        )
    return sql.SQL(" ").join(parts).as_string(None) + ";"


def _domain_alters(old: Domain, new: Domain) -> list[str]:
    name = sql.SQL("{}.{}").format(sql.Identifier(new.schema), sql.Identifier(new.name))
    out: list[sql.Composable] = []
    if old.default != new.default:
        if new.default is None:
            out.append(sql.SQL("alter domain {} drop default").format(name))
        else:
            out.append(
                sql.SQL("alter domain {} set default {}").format(
                    name, sql.SQL(new.default)
                )
            )
    if old.not_null != new.not_null:
        verb = "set" if new.not_null else "drop"
        out.append(sql.SQL("alter domain {} " + verb + " not null").format(name))
    before = dict(old.checks)
    after = dict(new.checks)
    for cname, definition in before.items():
        if after.get(cname) != definition:
            out.append(
                sql.SQL("alter domain {} drop constraint {}").format(
                    name, sql.Identifier(cname)
                )
            )
    for cname, definition in after.items():
        if before.get(cname) != definition:
            out.append(
                sql.SQL("alter domain {} add constraint {} {}").format(
                    name, sql.Identifier(cname), sql.SQL(definition)
                )
            )
    return [s.as_string(None) + ";" for s in out]


def domain_statements(
    source: Catalog,
    target: Catalog,
    *,
    schema: str | None = None,
    exclude_schema: str | None = None,
    live: Any = None,
    i_target: Any = None,
    plan: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """The statements that bring the live database's domains to the target's.

    A domain whose base type or collation changed is recreated (see
    `_domain_swap`: renamed out of the way, created again, its columns
    converted, the views on them dropped and created again, the old copy
    dropped); this needs ``live`` to find what uses it (without it the domain
    is dropped and created, which PostgreSQL refuses while a column uses it).
    Otherwise its default, ``NOT NULL`` and checks are altered.

    Parameters:
        source: the live catalog.
        target: the target catalog.
        schema: only this schema.
        exclude_schema: every schema but this one.
        live: the live database (URL, ``Engine``, ``Connection``,
            `Database`), read for the columns and views that use a domain
            whose base type changes; None (or an inspection) skips that.
        i_target: the target's ``results`` inspection (the definitions of
            the views and column defaults to restore).
        plan: ``results``' statements so far (the objects it drops already
            are no obstacle).

    Returns:
        ``(creations and alterations, drops)``: the first go before the
        tables, the drops after them (with the views a domain change
        recreates).

    Raises:
        MigrationError: a domain whose base type changes is used by an object
            the conversion cannot carry (a function, another type, an array or
            generated column, a partition key...); the message names them.
    """

    before = scoped(source.domains, schema, exclude_schema)
    after = scoped(target.domains, schema, exclude_schema)
    creates: list[str] = []
    drops: list[str] = []
    for key, d in after.items():
        old = before.get(key)
        if old is None:
            creates.append(_domain_create(d))
        elif (old.base_type, old.collation) != (d.base_type, d.collation):
            swap = _domain_swap(
                old,
                d,
                live=live,
                i_target=i_target,
                plan=plan,
                scope=(schema, exclude_schema),
            )
            if swap is None:
                creates.append(_drop_domain(old))
                creates.append(_domain_create(d))
            else:
                creates.extend(swap[0])
                drops.extend(swap[1])
        else:
            creates.extend(_domain_alters(old, d))
    for key, d in before.items():
        if key not in after:
            drops.append(_drop_domain(d))
    return creates, drops


def _drop_domain(d: Domain) -> str:
    return (
        sql.SQL("drop domain {}.{};")
        .format(sql.Identifier(d.schema), sql.Identifier(d.name))
        .as_string(None)
    )


def _domain_swap(
    old: Domain,
    new: Domain,
    *,
    live: Any,
    i_target: Any,
    plan: Sequence[str],
    scope: tuple[str | None, str | None] = (None, None),
) -> tuple[list[str], list[str]] | None:
    """Recreate a domain on a new base type, converting the columns that use it.

    The plan: drop the views on those columns (and the views on them), rename
    the domain to ``<name>__old_version_to_be_dropped``, create it again,
    ``ALTER COLUMN ... TYPE`` each column of an ordinary or partitioned table
    (inherited columns follow their parent; each column's default is dropped
    first and the target's set after); then, after the tables, drop the old
    copy and create the views again from the target (with their comments and
    a materialized view's indexes).

    Parameters:
        old: the live domain.
        new: the target domain.
        live: the live database.
        i_target: the target inspection.
        plan: the statements ``results`` plans (what it drops is no obstacle).
        scope: the plan's ``(schema, exclude_schema)``.

    Returns:
        ``(before the tables, after them)``, or None when ``live`` is not a
        database.

    Raises:
        MigrationError: something else uses the domain (see `domain_statements`),
            or a view or column using it lies outside the schemas the plan
            covers (the plan could not create such a view again: the target
            is inspected in those schemas only).
    """
    dependents = type_dependents(live, [(old.schema, old.name)])
    if dependents is None:
        return None
    views = dependent_views(live, (old.schema, old.name))
    in_views = {f"{s}.{n}" for s, n, _ in views}
    drops = PlanDrops.read(plan)
    columns: list[Dependent] = []
    defaults: set[tuple[str, str]] = set()
    blockers = []
    outside = [described_view(v) for v in views if not in_scope(v[0], *scope)]
    for d in dependents:
        if d.rel is not None and d.rel in in_views:
            continue  # a view column or rule: the view is recreated
        if drops.covers(d):
            continue
        if d.relation is not None and not in_scope(d.relation[0], *scope):
            outside.append(d.described)
            continue
        if d.is_plain_column:
            if not d.inherited:
                columns.append(d)
            continue
        if d.catalog == "pg_attrdef" and not d.generated and d.rel and d.column:
            defaults.add((d.rel, d.column))
            continue
        blockers.append(d)
    covered: list[Dependent] = []
    blockers += view_obstacles(live, views, drops, covered)
    blockers += column_obstacles(
        live,
        [(*d.relation, d.column) for d in columns if d.relation and d.column],
        drops,
    )
    name = f"{old.schema}.{old.name}"
    refuse(
        "domain",
        name,
        f"its base type changes from {old.base_type} to {new.base_type}: the "
        "domain is recreated and its columns converted",
        blockers,
        outside=outside,
    )
    ident = sql.SQL("{}.{}").format(
        sql.Identifier(old.schema), sql.Identifier(old.name)
    )
    before: list[str] = []
    after: list[str] = []
    tables = getattr(i_target, "tables", {})
    # the plan's drops of the functions... using the views' row types come
    # first (the plan keeps a statement's first place)
    before.extend(drops_of(plan, covered))
    before.extend(view_drops(views))
    before.append(
        sql.SQL("alter domain {} rename to {};")
        .format(ident, sql.Identifier(old.name + _OLD_COPY))
        .as_string(None)
    )
    before.append(_domain_create(new))
    for d in columns:
        if d.relation is None or d.column is None:
            continue  # a plain column always has both
        rel = sql.SQL("{}.{}").format(*map(sql.Identifier, d.relation))
        key = results_key(*d.relation)
        col = sql.Identifier(d.column)
        target_col = getattr(tables.get(key), "columns", {}).get(d.column)
        restore_default = (d.rel, d.column) in defaults
        if restore_default:
            before.append(
                sql.SQL("alter table {} alter column {} drop default;")
                .format(rel, col)
                .as_string(None)
            )
        before.append(
            sql.SQL("alter table {} alter column {} type {} using {}::{}::{};")
            .format(rel, col, ident, col, sql.SQL(new.base_type), ident)
            .as_string(None)
        )
        if restore_default and target_col is not None and target_col.default:
            before.append(target_col.add_default_statement(key))
    after.append(
        sql.SQL("drop domain {}.{};")
        .format(sql.Identifier(old.schema), sql.Identifier(old.name + _OLD_COPY))
        .as_string(None)
    )
    after.extend(view_creations(views, i_target))
    return before, after
