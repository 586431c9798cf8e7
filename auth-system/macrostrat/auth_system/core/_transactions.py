"""One transaction on an auth table, with database errors said plainly.

The database-backed stores (the login throttle, the revoked tokens) each run
their statements in one short transaction on the auth database's engine and
turn a failure into their own error, carrying the driver's primary message
only (never parameters) and the driver's error as the ``__cause__``.

Besides SQLAlchemy's and psycopg's errors, a `macrostrat.database` engine
raises its own (`MacrostratDatabaseError`), which SQLAlchemy passes through
unwrapped: above all `CommitOutcomeUnknown`, a ``COMMIT`` whose connection
was lost and whose outcome the server could not confirm. That one becomes
the store's error with a message saying the outcome is unknown (the work may
or may not be committed), never that it failed or succeeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from macrostrat.database.errors import CommitOutcomeUnknown, MacrostratDatabaseError

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
    except CommitOutcomeUnknown as err:
        raise error(
            f"{what}: the connection was lost while committing, and the outcome "
            "is unknown (the change may or may not have been made)"
        ) from err
    except (SQLAlchemyError, psycopg.Error, MacrostratDatabaseError) as err:
        cause = getattr(err, "orig", err)
        diag = getattr(cause, "diag", None)
        message = getattr(diag, "message_primary", None) or type(err).__name__
        raise error(f"{what} could not be used: {message}") from err
