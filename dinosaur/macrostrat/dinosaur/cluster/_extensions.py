"""Create extensions in a fresh cluster, with an actionable error when one is missing."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from ..errors import ClusterError

__all__ = ["create_extensions"]


def create_extensions(conn: psycopg.Connection, extensions: Iterable[str]) -> None:
    """Create each of ``extensions`` (if missing) in the database of ``conn``.

    Parameters:
        conn: an autocommit connection to the target database.
        extensions: extension names, e.g. ``("postgis",)``.

    Raises:
        ClusterError: an extension is not installed on the server; for PostGIS
            the message names the Debian package to install.
    """
    major = conn.info.server_version // 10000
    for name in extensions:
        found = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,)
        ).fetchone()
        if found is None:
            hint = ""
            if name.startswith("postgis"):
                hint = (
                    f" Install PostGIS for PostgreSQL {major} "
                    f"(Debian: apt-get install postgresql-{major}-postgis-3)."
                )
            raise ClusterError(
                f"The extension {name!r} is not installed on this PostgreSQL {major} "
                f"server.{hint}"
            )
        conn.execute(
            sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name))
        )
