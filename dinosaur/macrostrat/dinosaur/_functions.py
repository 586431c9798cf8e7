"""Functions ``results`` replaces in place that PostgreSQL must drop and create.

``results`` plans a changed function with ``CREATE OR REPLACE`` whenever its
arguments and output columns match, but PostgreSQL refuses to replace a
function whose return type changes (``integer`` to ``bigint``, ``SETOF``
or not; "cannot change return type of existing function"), whose kind
changes (a function to a procedure) or that loses parameter defaults.
`fix_function_recreations` drops such a function first, with the views
that use it (and the views on those), which are created again from the
target after it; anything else using it (a column default, a constraint, an
index, a trigger, a policy, a type, a function whose body is parsed) would
make the drop fail, so the plan is refused, naming them, unless the plan
drops them already.  The functions ``results`` itself drops and creates
again (their output columns change) are checked the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._type_users import (
    Dependent,
    PlanDrops,
    function_dependents,
    refuse,
)
from ._view_users import (
    dependent_views,
    described_view,
    view_creations,
    view_drops,
    view_obstacles,
)

__all__ = ["fix_function_recreations"]

_KINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}


def _defaults(f: Any) -> int:
    """How many of a function's input parameters have a default."""
    return sum(1 for p in getattr(f, "inputs", ()) if getattr(p, "default", None))


def _why(old: Any, new: Any) -> str | None:
    """Why ``old`` cannot be replaced by ``new`` in place; None when it can."""
    if old.kind != new.kind:
        return (
            f"it changes from a {_KINDS.get(old.kind, old.kind)} to a "
            f"{_KINDS.get(new.kind, new.kind)}"
        )
    if old.result_string != new.result_string:
        return (
            f"its return type changes from {old.result_string} to {new.result_string}"
        )
    if _defaults(new) < _defaults(old):
        return "it loses parameter defaults"
    return None


def fix_function_recreations(
    statements: Sequence[str], i_from: Any, i_target: Any, *, live: Any = None
) -> list[str]:
    """Drop and create again the functions ``results`` would replace in place.

    For each function both sides have whose return type (or kind, or number
    of parameter defaults) changes: its drop goes right before ``results``'
    ``CREATE OR REPLACE``, the views that use it (and the views on those)
    are dropped and created again from the target, with their comments and
    a materialized view's indexes.

    Parameters:
        statements: the plan.
        i_from: the live inspection.
        i_target: the target inspection.
        live: the live database, read for what uses the functions; None (or
            an inspection) skips that (the views are then not recreated, nor
            the plan refused).

    Raises:
        MigrationError: something other than a view uses a function the plan
            drops and creates again (a column default, a constraint, an
            index, a trigger, a policy, a type, a function whose body is
            parsed) and the plan does not drop it, or a view using it lies
            outside the schemas the plan covers; the message names the
            function and them.
    """
    out = list(statements)
    before = getattr(i_from, "functions", {})
    recreated: list[tuple[Any, str, bool]] = []  # (old, why, the drop is ours)
    for key, new in getattr(i_target, "functions", {}).items():
        old = before.get(key)
        if old is None or old == new:
            continue
        if old.drop_statement in out:  # results drops and creates it itself
            recreated.append((old, "it is dropped and created again", False))
            continue
        why = _why(old, new)
        if why is None or new.create_statement not in out:
            continue
        out.insert(out.index(new.create_statement), old.drop_statement)
        recreated.append((old, why, True))
    if not recreated:
        return out
    covered = {x.schema for x in getattr(i_from, "schemas", {}).values()}

    def beyond(schema: str) -> bool:
        return bool(covered) and schema not in covered

    drops = PlanDrops.read(out)
    views: list[tuple[str, str, str]] = []  # (schema, name, relkind)
    for old, why, ours in recreated:
        blockers: list[Dependent] = []
        outside: list[str] = []
        mine: list[tuple[str, str, str]] = []
        found = function_dependents(
            live, [(old.schema, old.name, old.identity_arguments)]
        )
        for d in found or ():
            if drops.covers(d):
                continue
            is_view = d.catalog == "pg_rewrite" and d.relkind in ("v", "m")
            view = (*(d.relation or ("", "")), d.relkind or "v")
            if d.relation is not None and beyond(d.relation[0]):
                outside.append(described_view(view) if is_view else d.described)
            elif ours and is_view:
                if view not in mine:
                    mine.append(view)
            else:
                blockers.append(d)
        above = dependent_views(live, relations=[v[:2] for v in mine]) if mine else []
        views += [v for v in mine if v not in views]
        refuse(
            "function",
            f"{old.schema}.{old.name}({old.identity_arguments})",
            f"{why}: it is dropped and created again",
            blockers,
            outside=outside + [described_view(v) for v in above if beyond(v[0])],
        )
    if not views:
        return out
    above = dependent_views(live, relations=[v[:2] for v in views])
    every = [
        v
        for v in [*views, *(v for v in above if v not in views)]
        if f"{v[0]}.{v[1]}" not in drops.relations
    ]
    refuse(
        "function",
        ", ".join(
            f"{o.schema}.{o.name}({o.identity_arguments})" for o, _, _ in recreated
        ),
        "it is dropped and created again, with the views using it",
        view_obstacles(live, [*views, *(v for v in above if v not in views)], drops),
    )
    return [*view_drops(every), *out, *view_creations(every, i_target)]
