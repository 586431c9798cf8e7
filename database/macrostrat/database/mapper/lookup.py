"""What to say when a model or table is not found: where we looked, what is close.

Every "not found" of the mapper and of `Database.get_table`/`get_model` names
the schemas it searched and the closest names there (``difflib``), or a few
known names when nothing is close, never hundreds.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, inspect

from ..errors import TableNotFoundError

__all__ = [
    "closest",
    "missing_name",
    "qualified_name",
    "searched",
    "table_not_found",
]

log = logging.getLogger(__name__)


def closest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates closest to ``name`` (difflib's ratio, at least 0.6), best first.

    Case is ignored when comparing (``Sample`` finds ``sample``).
    """
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(by_folded), n=n)
    return [by_folded[m] for m in matches]


def searched(schemas: Iterable[str]) -> str:
    """``schema 'public'`` or ``schemas 'geology', 'public'`` (sorted)."""
    names = sorted(set(schemas))
    if len(names) == 1:
        return f"schema {names[0]!r}"
    return "schemas " + ", ".join(repr(s) for s in names)


def qualified_name(schema: str, table: str) -> str:
    """``table`` in ``public``, else ``schema.table`` (what get_table/get_model take)."""
    return table if schema == "public" else f"{schema}.{table}"


def missing_name(
    kind: str,
    name: str,
    candidates: Iterable[str],
    schemas: Iterable[str] | None = None,
) -> str:
    """``no model named 'x' in schema 'public' (did you mean: y?)``.

    Parameters:
        kind: what was looked for (``"model"``, ``"table"``).
        name: the name asked for.
        candidates: the names that exist.
        schemas: the schemas searched (left out of the message when None).
    """
    keys = list(candidates)
    where = "" if schemas is None else f" in {searched(schemas)}"
    close = closest(name, keys)
    if close:
        hint = f"did you mean: {', '.join(close)}?"
    elif not keys:
        hint = f"no {kind}s are mapped"
    else:
        shown = sorted(keys)[:10]
        more = f", … ({len(keys) - len(shown)} more)" if len(keys) > len(shown) else ""
        hint = f"known: {', '.join(shown)}{more}"
    return f"no {kind} named {name!r}{where} ({hint})"


def table_not_found(
    bind: Engine | Connection, schema: str, table: str
) -> TableNotFoundError:
    """The error for a table or view that reflection did not find, with suggestions.

    Looks up the tables, views and materialized views of ``schema`` (or, when
    the schema does not exist, the schemas) to name the closest ones.

    Parameters:
        bind: where to look.
        schema: the schema searched (``"public"`` for the default one).
        table: the name asked for.
    """
    requested = qualified_name(schema, table)
    suggestions: list[str] = []
    reason = f"no table or view named {table!r} in {searched([schema])}"
    try:
        insp = inspect(bind)
        schemas = [s for s in insp.get_schema_names() if not s.startswith("pg_")]
        if schema not in schemas:
            reason += " (the schema does not exist"
            close = closest(schema, schemas)
            reason += f"; did you mean: {', '.join(close)}?)" if close else ")"
        else:
            sa_schema = None if schema == "public" else schema
            names = [
                *insp.get_table_names(schema=sa_schema),
                *insp.get_view_names(schema=sa_schema),
                *insp.get_materialized_view_names(schema=sa_schema),
            ]
            suggestions = [qualified_name(schema, n) for n in closest(table, names)]
            if suggestions:
                reason += f" (did you mean: {', '.join(suggestions)}?)"
    except Exception:  # the suggestions are a courtesy; the error is what matters
        log.debug("no suggestions for %s", requested, exc_info=True)
    return TableNotFoundError(
        reason, table=table, schema=schema, requested=requested, suggestions=suggestions
    )
