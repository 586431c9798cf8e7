"""Compatibility with psycopg2 ``sql`` objects (deprecated).

The upstream module path ``macrostrat.database.compat`` is kept for callers
that convert psycopg2 ``sql`` objects (``Identifier``, ``SQL``, ``Literal``,
``Placeholder``, ``Composed``) to their psycopg 3 equivalents. psycopg2 is not
a dependency: only objects that already come from an installed psycopg2 are
converted.
"""

from __future__ import annotations

from typing import Any

from ._sql.source import from_psycopg2

__all__ = ["update_legacy_identifier"]


def update_legacy_identifier(identifier: Any) -> Any:
    """Return ``identifier`` converted to psycopg 3 if it is a psycopg2 ``sql`` object.

    Emits a ``DeprecationWarning`` when a conversion happens; any other object
    is returned unchanged.

    Parameters:
        identifier: a psycopg2 ``sql`` object, or anything else (upstream's
            parameter name).
    """
    converted = from_psycopg2(identifier)
    return identifier if converted is None else converted
