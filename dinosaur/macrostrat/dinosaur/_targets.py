"""How migrations reach a database: the one rule from any target to libpq.

The lowest module of the migrations: `diff`, `apply` and the CLI all turn a
URL, ``Engine``, ``Connection`` or `macrostrat.database.Database` into a
libpq connection string here, and every connection that reads a catalog
or applies a plan sets the same ``search_path`` (`pin_search_path`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import URL

__all__ = ["PLAN_SEARCH_PATH", "conninfo", "pin_search_path", "target_url"]

PLAN_SEARCH_PATH = "public"
"""The ``search_path`` plans are read and applied under.

Catalog functions spell names relative to it (``format_type``,
``pg_get_viewdef``, function arguments), so both sides of a diff and the
plan's execution use this one, whatever the database or role sets.
"""


def pin_search_path(conn: psycopg.Connection[Any], *, local: bool = True) -> None:
    """Set `PLAN_SEARCH_PATH` on ``conn``: for its transaction, or the session."""
    scope = "LOCAL " if local else ""
    conn.execute(f"SET {scope}search_path = {PLAN_SEARCH_PATH}")


def target_url(target: Any) -> URL:
    """The SQLAlchemy ``URL`` of a URL, ``Engine``, ``Connection`` or `Database`."""
    from macrostrat.database import get_database_url

    return get_database_url(target)


def conninfo(target: Any) -> str:
    """A libpq connection string for a URL, ``Engine``, ``Connection`` or `Database`."""
    return (
        target_url(target)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
