"""SQLAlchemy's transaction fix for the standard ``sqlite3`` driver (pysqlite).

Left alone, ``sqlite3`` begins transactions only before ``INSERT``/``UPDATE``/
``DELETE``, so DDL, ``SELECT`` and ``SAVEPOINT`` run outside the transaction
SQLAlchemy thinks it is in.  `install_transaction_fix` adds SQLAlchemy's
documented hooks to an engine ("Serializable isolation / Savepoints /
Transactional DDL" in SQLAlchemy's SQLite docs): a ``connect`` hook stops
``sqlite3`` from emitting ``BEGIN`` itself, and a ``begin`` hook emits
``BEGIN`` whenever SQLAlchemy begins a transaction.

`macrostrat.database.engine.create_engine` installs it; the SQL runner
(`macrostrat.database._sql.sqlite`) marks a connection with `SQLITE_NO_BEGIN`
while it runs statements that each commit on their own.  This module imports
nothing of the package, so both can use it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Connection, Engine, event

__all__ = ["SQLITE_NO_BEGIN", "install_transaction_fix", "is_pysqlite"]

SQLITE_NO_BEGIN = "macrostrat.sqlite_no_begin"
"""Key in a pooled SQLite connection's ``info``: while set, SQLAlchemy's
transactions on it emit no ``BEGIN`` (the SQL runner's own-transaction mode,
where each statement commits on its own)."""


def is_pysqlite(url: URL) -> bool:
    """Whether ``url`` is SQLite through the standard library's ``sqlite3``."""
    return url.get_backend_name() == "sqlite" and url.get_driver_name() == "pysqlite"


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Pool ``connect`` hook: stop pysqlite from emitting ``BEGIN`` itself."""
    dbapi_connection.isolation_level = None


def _on_begin(conn: Connection) -> None:
    """Engine ``begin`` hook: emit the ``BEGIN`` pysqlite no longer emits.

    Not on an ``AUTOCOMMIT`` connection, not while the SQL runner uses the
    connection in autocommit (`SQLITE_NO_BEGIN`), and not when the connection
    is already in a transaction (which a second ``BEGIN`` would refuse).
    """
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    if conn.info.get(SQLITE_NO_BEGIN):
        return
    if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        return
    conn.exec_driver_sql("BEGIN")


def install_transaction_fix(engine: Engine) -> None:
    """Add the ``connect`` and ``begin`` hooks of the fix to a pysqlite ``engine``.

    Parameters:
        engine: an engine on the ``sqlite3`` driver, not made with
            ``isolation_level="AUTOCOMMIT"`` (SQLAlchemy documents the hooks
            as incompatible with it).
    """
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
