"""One transaction on an auth table, with database errors said plainly.

The database-backed stores (the login throttle, the revoked tokens) each run
their statements in one short transaction on the auth database's engine and
turn a failure into their own error, carrying the driver's primary message
only (never parameters) and the driver's error as the ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["table_transaction"]


class _HasEngine(Protocol):
    @property
    def engine(self) -> Engine: ...


@contextmanager
def table_transaction(
    database: _HasEngine, error: type[Exception], what: str
) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection in one transaction, committed on success.

    Parameters:
        database: what holds the engine (a `macrostrat.database.Database`).
        error: the error class a database failure becomes.
        what: names the table in that error's message.
    """
    try:
        with database.engine.begin() as conn:
            # SQLAlchemy types the DBAPI connection as Any | None; with the
            # psycopg dialect it is a psycopg connection.
            yield cast(psycopg.Connection[Any], conn.connection.driver_connection)
    except (SQLAlchemyError, psycopg.Error) as err:
        cause = getattr(err, "orig", err)
        diag = getattr(cause, "diag", None)
        message = getattr(diag, "message_primary", None) or type(err).__name__
        raise error(f"{what} could not be used: {message}") from err
