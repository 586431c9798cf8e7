"""Small helpers over a connectable: one table reflected, a ``Session``, a ``DataFrame``.

Public through `macrostrat.database.utils` (upstream's import path) and the
package root: `reflect_table`, `db_session`, `get_dataframe` and
`allow_shutdown` (a connection whose termination is not an error). Each takes
a `Database`, an ``Engine`` or a ``Connection`` (see
`macrostrat.database._connectable.bind_of`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.orm import Session

from ._connectable import HasEngine, bind_of

if TYPE_CHECKING:
    import pandas

__all__ = ["allow_shutdown", "db_session", "get_dataframe", "reflect_table"]


def _is_admin_shutdown(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error behind it) is SQLSTATE 57P01."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if getattr(err, "sqlstate", None) == "57P01":  # admin_shutdown
            return True
        todo += [getattr(err, "orig", None), err.__cause__]
    return False


@contextmanager
def allow_shutdown(engine: HasEngine | Engine | Connection) -> Iterator[Connection]:
    """Yield a connection on ``engine``; its session being terminated is not an error.

    For statements that may end their own session, such as
    ``pg_terminate_backend`` over every session of the current database: an
    ``AdminShutdown`` (SQLSTATE 57P01, "terminating connection due to
    administrator command") raised in the block, by psycopg or wrapped in
    SQLAlchemy's ``OperationalError`` (or one of
    `macrostrat.database.errors`), ends the block quietly. Any other error
    propagates. A connection opened here is closed afterwards (a terminated
    one is discarded by the pool); a ``Connection`` given is yielded as is.

    Parameters:
        engine: a `Database`, ``Engine`` or ``Connection``.
    """
    bind = _bind(engine)
    if isinstance(bind, Connection):
        try:
            yield bind
        except Exception as exc:
            if not _is_admin_shutdown(exc):
                raise
        return
    with bind.connect() as conn:
        try:
            yield conn
        except Exception as exc:
            if not _is_admin_shutdown(exc):
                raise


def _bind(connectable: Any) -> Engine | Connection:
    """The engine or connection to run on (see `.._connectable.bind_of`)."""
    bind = bind_of(connectable)
    if bind is None:
        raise TypeError(
            "expected a Database, Engine or Connection, "
            f"not {type(connectable).__name__}"
        )
    return bind


def reflect_table(
    engine: HasEngine | Engine | Connection,
    tablename: str,
    *column_args: Any,
    schema: str | None = "public",
    **kwargs: Any,
) -> Table:
    """Reflect one table from the database into a new ``MetaData``.

    Parameters:
        engine: a `Database`, ``Engine`` or ``Connection``.
        tablename: the table (or view) name.
        *column_args: ``Column`` objects that override reflected ones (for
            example to declare a primary key on a view).
        schema: the table's schema (None: the default schema).
        **kwargs: passed to ``sqlalchemy.Table``.

    Raises:
        sqlalchemy.exc.NoSuchTableError: there is no such table.
    """
    meta = MetaData(schema=schema)
    return Table(tablename, meta, *column_args, autoload_with=_bind(engine), **kwargs)


def _sql_text(filename_or_query: str | Path) -> str:
    """The SQL in a ``.sql`` file (a ``Path``, or a string naming one), or the string."""
    if isinstance(filename_or_query, Path):
        return filename_or_query.read_text()
    text = str(filename_or_query)
    if "\n" not in text and text.strip().lower().endswith(".sql"):
        path = Path(text.strip())
        if path.is_file():
            return path.read_text()
    return text


def get_dataframe(
    connectable: HasEngine | Engine | Connection,
    filename_or_query: str | Path,
    **kwargs: Any,
) -> pandas.DataFrame:
    """Run a query and return its result as a pandas ``DataFrame``.

    Needs pandas (``pip install 'macrostrat.database[pandas]'``).

    Parameters:
        connectable: a `Database`, ``Engine`` or ``Connection``.
        filename_or_query: SQL text, or a ``.sql`` file (a ``Path`` or a string
            naming an existing file).
        **kwargs: passed to ``pandas.read_sql`` (e.g. ``params``, ``index_col``).
    """
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "get_dataframe needs pandas: pip install 'macrostrat.database[pandas]'"
        ) from exc
    from sqlalchemy import text

    return pandas.read_sql(
        text(_sql_text(filename_or_query)), _bind(connectable), **kwargs
    )


def db_session(engine: HasEngine | Engine | Connection) -> Session:
    """A new ORM ``Session`` bound to ``engine`` (close it when done)."""
    return Session(bind=_bind(engine))
