"""How migrations reach a database: the one rule from any target to libpq.

The lowest module of the migrations: `diff`, `apply` and the CLI all turn a
URL, ``Engine``, ``Connection`` or `macrostrat.database.Database` into a
libpq connection string here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL

__all__ = ["conninfo", "target_url"]


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
