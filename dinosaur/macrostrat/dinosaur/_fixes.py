"""Corrections to what ``results`` inspects and plans for tables and views.

- `prune_inherited`: the objects PostgreSQL makes by itself on partitions
  (indexes attached to a partitioned index, constraints cloned from the
  parent, triggers cloned from the parent) are taken out of an inspection, so
  a plan neither creates them a second time nor drops them on their own.
- `fix_partitioned`: on a partitioned table a primary key or unique
  constraint cannot be added ``USING INDEX`` (the index made ``ON ONLY`` the
  parent is invalid), a foreign key cannot be ``NOT VALID``, and an index must
  be made on the whole tree (not ``ON ONLY``) to reach the partitions; those
  statements are replaced.
- `comment_only_changes`: a view, materialized view or function whose only
  change is its comment gets a ``COMMENT`` statement, not ``results``' drop
  and recreation.
- `recreated_view_indexes`: a materialized view the plan drops and creates
  again gets back the indexes ``results`` does not recreate.
- `order_added_columns`: the columns ``results`` adds (in name order) are
  added in the target's order.

Types are corrected elsewhere: domains in `macrostrat.dinosaur._domains`,
enums in `macrostrat.dinosaur._enums`, composite types in
`macrostrat.dinosaur._composites`; so are the functions PostgreSQL cannot
replace in place (`macrostrat.dinosaur._functions`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from ._depends import Catalog
from .hazards import _IDENT, _QNAME, _bare, _norm_name, _strip_comments

__all__ = [
    "comment_only_changes",
    "fix_partitioned",
    "order_added_columns",
    "prune_inherited",
    "readded_column_dependents",
    "readded_columns",
    "recreated_view_comments",
    "recreated_view_indexes",
    "synced_identities",
]

_I = re.IGNORECASE | re.DOTALL


def prune_inherited(inspection: Any, catalog: Catalog) -> None:
    """Remove the objects PostgreSQL clones onto partitions from ``inspection``.

    Parameters:
        inspection: a ``results`` ``PostgreSQL`` inspection (changed in place).
        catalog: the catalog of the same database (see `read_catalog`).
    """
    constraints = getattr(inspection, "constraints", None)
    if constraints is not None:
        for key in [
            k
            for k, c in constraints.items()
            if (c.schema, c.table_name, c.name) in catalog.inherited_constraints
        ]:
            del constraints[key]
    indexes = getattr(inspection, "indexes", None)
    if indexes is not None:
        for key in [
            k
            for k, ix in indexes.items()
            if catalog.is_inherited_index(f"index:{ix.schema}.{ix.name}")
        ]:
            del indexes[key]
    triggers = getattr(inspection, "triggers", None)
    if triggers is not None:
        for key in [
            k
            for k, t in triggers.items()
            if (t.schema, t.table_name, t.name) in catalog.cloned_triggers
        ]:
            del triggers[key]


_ADD_USING_INDEX = re.compile(
    rf"^alter\s+table\s+({_QNAME})\s+add\s+constraint\s+({_IDENT})\s+"
    rf"(?:primary\s+key|unique)\s+using\s+index\s+({_IDENT})",
    _I,
)
_CREATE_INDEX = re.compile(
    rf"^(create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?"
    rf"({_IDENT})\s+on\s+)only\s+({_QNAME})",
    _I,
)
_ADD_NOT_VALID = re.compile(
    rf"^alter\s+table\s+({_QNAME})\s+add\s+constraint\s+({_IDENT})\s+(.*?)\s+not\s+valid\s*;?\s*$",
    _I,
)
_VALIDATE = re.compile(
    rf"^alter\s+table\s+({_QNAME})\s+validate\s+constraint\s+({_IDENT})\s*;?\s*$", _I
)


def _qualified(name: str) -> sql.Composed:
    schema, _, rel = _norm_name(name).partition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(rel))


def fix_partitioned(statements: Sequence[str], target: Catalog) -> list[str]:
    """Replace the statements ``results`` gets wrong on partitioned tables.

    - ``ADD CONSTRAINT c PRIMARY KEY|UNIQUE USING INDEX i`` becomes ``ADD
      CONSTRAINT c`` with the constraint's definition (which builds the index
      on every partition), and the ``CREATE INDEX i ON ONLY`` before it goes;
    - ``CREATE INDEX ... ON ONLY t`` becomes ``ON t`` (the partitions' indexes
      are made or attached);
    - a foreign key added ``NOT VALID`` and validated afterwards is added valid
      in one statement.

    Parameters:
        statements: the plan.
        target: the catalog of the target database.
    """
    drop_index: set[str] = set()
    out: list[str] = []
    for raw in statements:
        text = _strip_comments(raw)
        m = _ADD_USING_INDEX.match(text)
        if m:
            table = _norm_name(m.group(1))
            if target.is_partitioned("rel:" + table):
                schema, _, rel = table.partition(".")
                cname = _bare(m.group(2))
                definition = target.constraint_defs.get((schema, rel, cname))
                if definition is not None:
                    drop_index.add(f"{schema}.{_bare(m.group(3))}")
                    out.append(
                        sql.SQL("alter table {} add constraint {} {};")
                        .format(
                            _qualified(table),
                            sql.Identifier(cname),
                            sql.SQL(definition),
                        )
                        .as_string(None)
                    )
                    continue
        m = _ADD_NOT_VALID.match(text)
        if m and target.is_partitioned("rel:" + _norm_name(m.group(1))):
            out.append(
                sql.SQL("alter table {} add constraint {} {};")
                .format(
                    _qualified(m.group(1)),
                    sql.Identifier(_bare(m.group(2))),
                    sql.SQL(m.group(3)),
                )
                .as_string(None)
            )
            continue
        m = _VALIDATE.match(text)
        if m and target.is_partitioned("rel:" + _norm_name(m.group(1))):
            continue
        out.append(raw)
    result: list[str] = []
    for raw in out:
        m = _CREATE_INDEX.match(_strip_comments(raw))
        if m:
            table = _norm_name(m.group(3))
            index = f"{table.partition('.')[0]}.{_bare(m.group(2))}"
            if index in drop_index:
                continue
            raw = _CREATE_INDEX.sub(r"\1\3", _strip_comments(raw), count=1)
        result.append(raw)
    return result


_COMMENT_KINDS = {"v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FUNCTION"}


def comment_only_changes(i_from: Any, i_target: Any) -> list[str]:
    """``COMMENT`` statements for views, materialized views and functions whose
    only change is their comment.

    ``results`` drops and recreates such an object (for a materialized view:
    its rows and indexes).  Here the live object's comment is set to the
    target's in the inspection, so ``results`` sees no change, and a
    ``COMMENT`` statement is planned instead.

    Parameters:
        i_from: the live inspection (changed in place).
        i_target: the target inspection.
    """
    out: list[str] = []
    before = getattr(i_from, "selectables", {})
    for key, new in getattr(i_target, "selectables", {}).items():
        kind = _COMMENT_KINDS.get(getattr(new, "relationtype", ""))
        old = before.get(key)
        if kind is None or old is None or old.comment == new.comment:
            continue
        kept = old.comment
        old.comment = new.comment
        if old != new:
            old.comment = kept
            continue
        name = new.signature if kind == "FUNCTION" else new.quoted_full_name
        value = sql.Literal(new.comment) if new.comment is not None else sql.SQL("NULL")
        out.append(
            sql.SQL("COMMENT ON {} {} IS {};")
            .format(sql.SQL(kind), sql.SQL(name), value)
            .as_string(None)
        )
    return out


def recreated_view_indexes(statements: Sequence[str], i_target: Any) -> list[str]:
    """The target's indexes on materialized views the plan drops and creates again.

    Dropping a materialized view drops its indexes; ``results`` recreates only
    the indexes that are new, so the others are added here.

    Parameters:
        statements: the plan.
        i_target: the target inspection.
    """
    dropped: set[str] = set()
    for raw in statements:
        m = re.match(
            rf"^drop\s+materialized\s+view\s+(?:if\s+exists\s+)?({_QNAME})",
            _strip_comments(raw),
            _I,
        )
        if m:
            dropped.add(_norm_name(m.group(1)))
    if not dropped:
        return []
    present = set(statements)
    out = []
    for ix in getattr(i_target, "indexes", {}).values():
        if f"{ix.schema}.{ix.table_name}" in dropped:
            stmt = ix.create_statement
            if stmt not in present:
                out.append(stmt)
    return out


_DROP_VIEW = re.compile(
    rf"^drop\s+(materialized\s+view|view)\s+(?:if\s+exists\s+)?({_QNAME})", _I
)


def recreated_view_comments(statements: Sequence[str], i_target: Any) -> list[str]:
    """The target's comments on the views and materialized views the plan drops.

    A view ``results`` drops and creates again (its columns changed) loses its
    comment, and ``results`` sets comments only on new objects; those of the
    re-created views are set here (unless the plan sets them already).

    Parameters:
        statements: the plan.
        i_target: the target inspection.
    """
    dropped: dict[str, str] = {}
    for raw in statements:
        m = _DROP_VIEW.match(_strip_comments(raw))
        if m:
            materialized = "materialized" in m.group(1).lower()
            dropped[_norm_name(m.group(2))] = (
                "MATERIALIZED VIEW" if materialized else "VIEW"
            )
    if not dropped:
        return []
    present = "\n".join(statements).lower()
    out = []
    for view in getattr(i_target, "selectables", {}).values():
        found = dropped.get(f"{view.schema}.{view.name}")
        if found is None or view.comment is None:
            continue
        statement = (
            sql.SQL("COMMENT ON {} {}.{} IS {};")
            .format(
                sql.SQL(found),
                sql.Identifier(view.schema),
                sql.Identifier(view.name),
                sql.Literal(view.comment),
            )
            .as_string(None)
        )
        if statement.lower() not in present:
            out.append(statement)
    return out


_DROP_COLUMN = re.compile(
    rf"^alter\s+table\s+(?:only\s+)?({_QNAME})\s+drop\s+column\s+"
    rf"(?:if\s+exists\s+)?({_IDENT})",
    _I,
)
_ADD_COLUMN_AGAIN = re.compile(
    rf"^alter\s+table\s+(?:only\s+)?({_QNAME})\s+add\s+column\s+"
    rf"(?:if\s+not\s+exists\s+)?({_IDENT})",
    _I,
)


def readded_columns(statements: Sequence[str]) -> set[tuple[str, str]]:
    """``(schema.table, column)`` of the columns the plan drops and adds again."""
    dropped: set[tuple[str, str]] = set()
    added: set[tuple[str, str]] = set()
    for raw in statements:
        text = _strip_comments(raw)
        if m := _DROP_COLUMN.match(text):
            dropped.add((_norm_name(m.group(1)), _bare(m.group(2))))
        elif m := _ADD_COLUMN_AGAIN.match(text):
            added.add((_norm_name(m.group(1)), _bare(m.group(2))))
    return dropped & added


def readded_column_dependents(statements: Sequence[str], i_target: Any) -> list[str]:
    """The target's indexes and constraints on the columns the plan drops and adds again.

    A generated column whose expression changes is dropped and added again;
    the indexes and constraints on it go with the drop, and ``results``
    plans only the ones that changed.  Those the target has on such a column
    (named in their definition) are created again here.

    Parameters:
        statements: the plan.
        i_target: the target inspection.
    """
    redone = readded_columns(statements)
    if not redone:
        return []
    present = set(statements)
    out: list[str] = []

    def uses(definition: str, table: str) -> bool:
        return any(
            t == table
            and re.search(
                rf'(?<![\w"]){re.escape(c)}(?![\w"])|"{re.escape(c)}"', definition
            )
            for t, c in redone
        )

    for ix in getattr(i_target, "indexes", {}).values():
        table = f"{ix.schema}.{ix.table_name}"
        if uses(ix.definition, table) and ix.create_statement not in present:
            out.append(ix.create_statement)
    for con in getattr(i_target, "constraints", {}).values():
        table = f"{con.schema}.{con.table_name}"
        if uses(con.definition, table) and con.create_statement not in present:
            out.append(con.create_statement)
    return out


_ADD_IDENTITY = re.compile(
    rf"^alter\s+table\s+(?:only\s+)?({_QNAME})\s+alter\s+column\s+({_IDENT})\s+"
    r"add\s+generated\s+(?:always|by\s+default)\s+as\s+identity\b",
    _I,
)


def synced_identities(statements: Sequence[str]) -> list[str]:
    """``ADD GENERATED ... AS IDENTITY`` on a live column, followed by a ``setval``.

    A new identity starts at 1 whatever the column holds, so the next insert
    would reuse the existing values (a duplicate key).  The statement is kept
    as it is, with ``SELECT setval(...)`` of the identity's sequence to just
    past the column's largest value appended to the same plan item, so the
    two always run together.

    Parameters:
        statements: the plan.
    """
    out = []
    for raw in statements:
        m = _ADD_IDENTITY.match(_strip_comments(raw))
        if not m:
            out.append(raw)
            continue
        table = _norm_name(m.group(1))
        schema, _, name = table.partition(".")
        column = _bare(m.group(2))
        relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
        sync = sql.SQL(
            "SELECT setval(pg_get_serial_sequence({}, {}), "
            "coalesce(max({}), 0) + 1, false) FROM {};"
        ).format(
            sql.Literal(relation.as_string(None)),
            sql.Literal(column),
            sql.Identifier(column),
            relation,
        )
        out.append(raw.rstrip() + "\n" + sync.as_string(None))
    return out


_ADD_COLUMN = re.compile(
    rf"^alter\s+table\s+({_QNAME})\s+add\s+column\s+(?:if\s+not\s+exists\s+)?({_IDENT})",
    _I,
)
_COMMENT_COLUMN = re.compile(rf"^comment\s+on\s+column\s+({_QNAME})\s", _I)


def order_added_columns(statements: Sequence[str], i_target: Any) -> list[str]:
    """Put the columns ``results`` adds to a table in their declared order.

    ``results`` adds new columns in name order; here each table's ``ADD
    COLUMN`` statements (each with the ``COMMENT ON COLUMN`` right after it)
    take the places of that table's additions in the target's column order.

    Parameters:
        statements: the plan.
        i_target: the target inspection.
    """
    units: list[list[str]] = []
    for raw in statements:
        m = _COMMENT_COLUMN.match(_strip_comments(raw))
        if m and units and _ADD_COLUMN.match(_strip_comments(units[-1][0])):
            units[-1].append(raw)
        else:
            units.append([raw])
    tables = getattr(i_target, "tables", {})
    slots: dict[str, list[int]] = {}
    rank: dict[int, int] = {}
    for i, unit in enumerate(units):
        m = _ADD_COLUMN.match(_strip_comments(unit[0]))
        if not m:
            continue
        table = _norm_name(m.group(1))
        schema, _, name = table.partition(".")
        inspected = tables.get(f'"{schema}"."{name}"')
        if inspected is None:
            continue
        columns = list(inspected.columns)
        column = _bare(m.group(2))
        rank[i] = columns.index(column) if column in columns else len(columns)
        slots.setdefault(table, []).append(i)
    for positions in slots.values():
        ordered = [units[i] for i in sorted(positions, key=lambda i: rank[i])]
        for pos, unit in zip(positions, ordered, strict=True):
            units[pos] = unit
    return [s for unit in units for s in unit]
