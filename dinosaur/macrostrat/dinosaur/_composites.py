"""Composite types in every schema: created, changed attribute by attribute, dropped.

``results`` sees only the composite types on the search path, and plans a
changed one as nothing but its comment, so a plan would neither create
``CREATE TYPE s.pair AS (…)`` in another schema nor converge when an
attribute changes.  Its composite-type statements are left out (see
`macrostrat.dinosaur.diff.AutoMigration.add_all_changes`) and these, from both
catalogs (`macrostrat.dinosaur._depends.Composite`), replace them:

- a new type: ``CREATE TYPE … AS (…)`` with its comment;
- a removed one: ``DROP TYPE``;
- a changed one is compared attribute by attribute *in order*: the position
  of an attribute is part of the type (``ROW(…)::type`` casts and positional
  values are read by it).  PostgreSQL can drop attributes, append them and
  change the type of one, never reorder them, so a change is made in place
  when the target's attributes are the kept ones in their live order followed
  by the new ones:

  - ``ALTER TYPE … DROP ATTRIBUTE`` (``DELETES_DATA``: its values in
    columns of the type go), returned with the drops so that it runs after
    the plan has dropped the views and other objects using the attribute
    (PostgreSQL refuses to drop an attribute they use);
  - ``ALTER TYPE … ADD ATTRIBUTE``, in the target's order;
  - ``ALTER TYPE … ALTER ATTRIBUTE … TYPE`` (with ``COLLATE``;
    ``REWRITES_DATA``), only while nothing pins the type
    (`macrostrat.dinosaur._depends.Composite.pinned_by`: a column holding
    its values, directly or inside another composite type, an array or a
    domain; an expression using it) and nothing uses the attribute: PostgreSQL
    refuses it otherwise;
  - ``COMMENT ON TYPE``;
  - on a type with typed tables (``CREATE TABLE … OF type``), each of these
    ``ALTER TYPE`` statements ends in ``CASCADE``, which PostgreSQL requires
    to change the tables' columns with the type; `without_typed_column_changes`
    takes ``results``' own column changes of those tables out of the plan.

  Any other change (attributes reordered, one inserted between others, the
  type of an attribute changed while the type is pinned) needs the type
  dropped and created again: planned (``DROP TYPE`` and ``CREATE TYPE``)
  when nothing in the live database depends on the type but what the plan
  drops anyway, refused with `macrostrat.dinosaur.errors.MigrationError`
  (naming the type, the change and the objects using it) otherwise.  Values
  are never silently moved between attributes or dropped and added again.

The order against the rest of the plan comes from the catalogs' dependencies
(`macrostrat.dinosaur._order`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from psycopg import sql

from ._depends import Catalog, Composite, ObjectKey, in_scope, scoped
from ._type_users import Dependent, PlanDrops, plain_dependent, refuse
from .hazards import _IDENT, _QNAME, _norm_name, _split_top_level, _strip_comments

__all__ = ["composite_statements", "without_typed_column_changes"]

_RELKIND_WORDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}


def _name(c: Composite) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(c.schema), sql.Identifier(c.name))


def _typed(type_: str, collation: str | None) -> sql.Composable:
    if collation:
        return sql.SQL("{} COLLATE {}").format(sql.SQL(type_), sql.SQL(collation))
    return sql.SQL(type_)


def _spelled(type_: str, collation: str | None) -> str:
    return _typed(type_, collation).as_string(None)


def _comment(c: Composite) -> str:
    value = sql.Literal(c.comment) if c.comment is not None else sql.SQL("NULL")
    return sql.SQL("COMMENT ON TYPE {} IS {};").format(_name(c), value).as_string(None)


def _create(c: Composite) -> list[str]:
    attributes = sql.SQL(",\n").join(
        sql.SQL("    {} {}").format(sql.Identifier(name), _typed(type_, collation))
        for name, type_, collation in c.attributes
    )
    text = sql.SQL("CREATE TYPE {} AS (\n{}\n);").format(_name(c), attributes)
    out = [text.as_string(None)]
    if c.comment is not None:
        out.append(_comment(c))
    return out


def _drop(c: Composite) -> str:
    return sql.SQL("DROP TYPE {};").format(_name(c)).as_string(None)


def _why_not_in_place(old: Composite, new: Composite) -> str | None:
    """None when ``old`` can be altered into ``new``; else what is in the way."""
    live = [a[0] for a in old.attributes]
    wanted = [a[0] for a in new.attributes]
    kept = [a for a in live if a in wanted]
    added = [a for a in wanted if a not in live]
    if wanted != kept + added:
        return (
            f"its attributes are ({', '.join(live)}) in the live database and "
            f"({', '.join(wanted)}) in the target; PostgreSQL only appends "
            "attributes and cannot reorder them, so the type must be dropped "
            "and created again"
        )
    before = {a[0]: a[1:] for a in old.attributes}
    for name, type_, collation in new.attributes:
        if name not in before or before[name] == (type_, collation):
            continue
        users = [*old.pinned_by, *(w for a, w in old.attribute_users if a == name)]
        if users:
            return (
                f"attribute {name} changes from {_spelled(*before[name])} to "
                f"{_spelled(type_, collation)}, which PostgreSQL refuses while "
                "the type or the attribute is in use (by "
                f"{'; '.join(sorted(set(users)))}), so the type must be dropped "
                "and created again"
            )
    return None


def _alters(old: Composite, new: Composite) -> tuple[list[str], list[str]]:
    """The in-place changes: ``(alterations and additions, attribute drops)``."""
    name = _name(new)
    cascade = sql.SQL(" CASCADE") if old.typed_tables else sql.SQL("")
    before = {a[0]: a[1:] for a in old.attributes}
    wanted = {a[0] for a in new.attributes}
    early: list[sql.Composable] = []
    for attr, type_, collation in new.attributes:
        if attr not in before:
            early.append(
                sql.SQL("ALTER TYPE {} ADD ATTRIBUTE {} {}{};").format(
                    name, sql.Identifier(attr), _typed(type_, collation), cascade
                )
            )
        elif before[attr] != (type_, collation):
            early.append(
                sql.SQL("ALTER TYPE {} ALTER ATTRIBUTE {} TYPE {}{};").format(
                    name, sql.Identifier(attr), _typed(type_, collation), cascade
                )
            )
    late = [
        sql.SQL("ALTER TYPE {} DROP ATTRIBUTE {}{};")
        .format(name, sql.Identifier(attr), cascade)
        .as_string(None)
        for attr in before
        if attr not in wanted
    ]
    statements = [s.as_string(None) for s in early]
    if old.comment != new.comment:
        statements.append(_comment(new))
    return statements, late


def _dependents(
    old: Composite, source: Catalog, users: dict[ObjectKey, set[ObjectKey]]
) -> list[Dependent]:
    """What depends on ``old`` in the live catalog, as `Dependent` s for `refuse`.

    A table's columns of the type (or an array of it) are named one by one,
    so that a plan dropping them (not the table) clears them.
    """
    type_name = f"{old.schema}.{old.name}"
    out: list[Dependent] = []
    for key in sorted(users.get(old.key, ())):
        kind, _, ident = key.partition(":")
        schema, _, rest = ident.partition(".")
        if kind == "rel":
            relkind = source.relkinds.get(key)
            word = _RELKIND_WORDS.get(relkind or "", "relation")
            columns = [c for s, r, c in old.columns if (s, r) == (schema, rest)]
            out += [
                plain_dependent(
                    type_name,
                    "pg_class",
                    f"column {column} of {word} {ident}",
                    relation=(schema, rest),
                    relkind=relkind,
                    column=column,
                )
                for column in columns
            ] or [
                plain_dependent(
                    type_name,
                    "pg_class",
                    f"{word} {ident}",
                    relation=(schema, rest),
                    relkind=relkind,
                )
            ]
        elif kind == "index":
            out.append(
                plain_dependent(
                    type_name,
                    "pg_class",
                    f"index {ident}",
                    relation=(schema, rest),
                    relkind="i",
                )
            )
        elif kind == "type":
            word = "domain" if key in source.domains else "type"
            out.append(
                plain_dependent(type_name, "pg_type", f"{word} {ident}", name=ident)
            )
        elif kind == "function":
            name = ident.partition("(")[0]
            out.append(
                plain_dependent(type_name, "pg_proc", f"function {ident}", name=name)
            )
        elif kind in ("constraint", "trigger", "policy"):
            table, _, bare = rest.rpartition(".")
            out.append(
                plain_dependent(
                    type_name,
                    f"pg_{kind}",
                    f"{kind} {bare} on {schema}.{table}",
                    relation=(schema, table),
                    name=bare,
                )
            )
        else:
            out.append(plain_dependent(type_name, "", key.replace(":", " ", 1)))
    return out


def composite_statements(
    source: Catalog,
    target: Catalog,
    *,
    schema: str | None = None,
    exclude_schema: str | None = None,
    plan: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """The statements that bring the live database's composite types to the target's.

    See the module documentation for what is planned for each change.

    Parameters:
        source: the live catalog.
        target: the target catalog.
        schema: only this schema.
        exclude_schema: every schema but this one.
        plan: the statements ``results`` plans; the objects it drops do not
            stand in the way of a type that must be dropped and created again.

    Returns:
        ``(creations, alterations and recreations; attribute drops and type
        drops)``.

    Raises:
        MigrationError: a type must be dropped and created again (see the
            module documentation) while other objects of the live database,
            which the plan keeps, depend on it.
    """
    before = scoped(source.composites, schema, exclude_schema)
    after = scoped(target.composites, schema, exclude_schema)
    creates: list[str] = []
    drops: list[str] = []
    recreated: list[tuple[Composite, str]] = []
    for key, c in after.items():
        old = before.get(key)
        if old is None:
            creates += _create(c)
            continue
        why = _why_not_in_place(old, c)
        if why is None:
            _refuse_views_on_typed_tables(old, c, source)
            early, late = _alters(old, c)
            creates += early
            drops += late
        else:
            recreated.append((old, why))
            creates += [_drop(old), *_create(c)]
    removed = [_drop(c) for k, c in before.items() if k not in after]
    drops += removed
    if recreated:
        dropped = PlanDrops.read([*plan, *removed, *(_drop(o) for o, _ in recreated)])
        users = source.dependents_of()
        for old, why in recreated:
            blockers = [
                d for d in _dependents(old, source, users) if not dropped.covers(d)
            ]
            refuse("composite type", f"{old.schema}.{old.name}", why, blockers)
    return creates, drops


def _refuse_views_on_typed_tables(
    old: Composite, new: Composite, source: Catalog
) -> None:
    """Refuse an attribute's type change while a view reads a typed table of the type.

    ``ALTER TYPE … ALTER ATTRIBUTE … TYPE … CASCADE`` changes the column of
    each typed table, which PostgreSQL refuses while a view uses the table's
    column; the plan would run it before it drops the views.  The views are
    read per table (the catalog does not say which column a view reads).
    """
    before = {a[0]: a[1:] for a in old.attributes}
    changed = [a[0] for a in new.attributes if a[0] in before and before[a[0]] != a[1:]]
    if not changed or not old.typed_tables:
        return
    users = source.dependents_of()
    type_name = f"{old.schema}.{old.name}"
    views = []
    for table in old.typed_tables:
        for key in sorted(users.get(f"rel:{table}", ())):
            kind, _, ident = key.partition(":")
            relkind = source.relkinds.get(key)
            if kind == "rel" and relkind in ("v", "m"):
                schema, _, rest = ident.partition(".")
                word = _RELKIND_WORDS[relkind]
                views.append(
                    plain_dependent(
                        type_name,
                        "pg_class",
                        f"{word} {ident} (on typed table {table})",
                        relation=(schema, rest),
                        relkind=relkind,
                    )
                )
    refuse(
        "composite type",
        type_name,
        f"the type of attribute(s) {', '.join(changed)} changes, which "
        "changes the columns of its typed tables, refused by PostgreSQL while "
        "a view uses them",
        views,
    )


_ALTER_TABLE = re.compile(
    rf"^(alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?)({_QNAME})\s+(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_COLUMN_CHANGE = re.compile(
    rf"^(?:(?:add|drop)\s+column\b|alter\s+(?:column\s+)?{_IDENT}\s+"
    r"(?:set\s+data\s+)?type\b)",
    re.IGNORECASE,
)


def without_typed_column_changes(
    statements: Sequence[str],
    source: Catalog,
    target: Catalog,
    *,
    schema: str | None = None,
    exclude_schema: str | None = None,
) -> list[str]:
    """``statements`` without the column changes of typed tables whose type changes.

    A typed table (``CREATE TABLE … OF type``) takes its columns from its
    type: ``results`` sees the columns differ and plans ``ADD COLUMN``,
    ``DROP COLUMN`` and ``ALTER COLUMN … TYPE``, which PostgreSQL refuses on
    a typed table; the ``ALTER TYPE … CASCADE`` of `composite_statements`
    changes them with the type.  Other actions on those tables are kept.

    Parameters:
        statements: the plan.
        source: the live catalog.
        target: the target catalog.
        schema: only this schema.
        exclude_schema: every schema but this one.
    """
    tables: set[str] = set()
    for key, old in source.composites.items():
        new = target.composites.get(key)
        if (
            new is not None
            and new.attributes != old.attributes
            and in_scope(old.schema, schema, exclude_schema)
        ):
            tables.update(old.typed_tables)
    if not tables:
        return list(statements)
    out: list[str] = []
    for st in statements:
        m = _ALTER_TABLE.match(_strip_comments(st))
        if m is None or _norm_name(m.group(2)) not in tables:
            out.append(st)
            continue
        actions = _split_top_level(m.group(3).rstrip().rstrip(";"))
        kept = [a.strip() for a in actions if not _COLUMN_CHANGE.match(a.strip())]
        if len(kept) == len(actions):
            out.append(st)
        elif kept:
            out.append(f"{m.group(1)}{m.group(2)} {', '.join(kept)};")
    return out
