"""The ``macrostrat.database.utils`` import layout of earlier releases.

New code should import from the package root or from the focused modules
(`macrostrat.database.admin`, `.engine`, `.postgresql`, `.sequences`,
`.query`); this module re-exports their names so that existing imports keep
working, and holds a few small ORM and reflection helpers.

``run_sql``, ``run_query``, ``run_sql_file``, ``run_fixtures``, ``get_sql_text``
and ``execute`` are loaded from `macrostrat.database.query` on first access.

The database lifecycle functions here (and at the package root) also take
upstream's parameter names (``_input=``, ``engine=``, ``url=``) with a
``DeprecationWarning``, and ``drop_database(url, force, allow_missing)``
positionally, as upstream did; `macrostrat.database.admin` has them under our
names only.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from . import admin as _admin
from ._renamed import renamed_parameters
from .admin import DatabaseTarget
from .engine import DatabaseInput, create_engine

if TYPE_CHECKING:
    import pandas

    from .core import Database
    from .query import (
        execute,
        get_sql_text,
        run_fixtures,
        run_query,
        run_sql,
        run_sql_file,
    )

__all__ = [
    "DatabaseInput",
    "DatabaseTarget",
    "allow_shutdown",
    "close_all_connections",
    "connection_args",
    "create_database",
    "create_engine",
    "database_exists",
    "db_isready",
    "db_session",
    "drop_database",
    "execute",
    "get_database_url",
    "get_dataframe",
    "get_db_model",
    "get_or_create",
    "get_sql_text",
    "reflect_table",
    "run_fixtures",
    "run_query",
    "run_sql",
    "run_sql_file",
    "temp_database",
    "template_database",
    "temporary_database",
    "wait_for_database",
]

log = logging.getLogger(__name__)

_input_is_target = renamed_parameters({"_input": "target"})

# Upstream's names for the first parameter (and drop_database's positions).
close_all_connections = renamed_parameters({"engine": "target"})(
    _admin.close_all_connections
)
connection_args = _input_is_target(_admin.connection_args)
create_database = _input_is_target(_admin.create_database)
database_exists = renamed_parameters({"url": "target"})(_admin.database_exists)
db_isready = _input_is_target(_admin.db_isready)
drop_database = renamed_parameters(
    {"_input": "target"}, positional=("force", "allow_missing")
)(_admin.drop_database)
get_database_url = _input_is_target(_admin.get_database_url)
template_database = _input_is_target(_admin.template_database)
temporary_database = _input_is_target(_admin.temporary_database)
wait_for_database = _input_is_target(_admin.wait_for_database)

_FROM_QUERY = frozenset(
    {"run_sql", "run_query", "run_sql_file", "run_fixtures", "get_sql_text", "execute"}
)

M = TypeVar("M")


def __getattr__(name: str) -> Any:
    """Load the SQL-running names from `macrostrat.database.query` on first use."""
    if name in _FROM_QUERY:
        value = getattr(importlib.import_module(".query", __package__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_QUERY)


def temp_database(*args: Any, **kwargs: Any) -> AbstractContextManager[Engine]:
    """Deprecated alias of `temporary_database` (same arguments)."""
    warnings.warn(
        "temp_database is deprecated; use temporary_database",
        DeprecationWarning,
        stacklevel=2,
    )
    return temporary_database(*args, **kwargs)


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
def allow_shutdown(engine: Database | Engine | Connection) -> Iterator[Connection]:
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
    if isinstance(connectable, (Engine, Connection)):
        return connectable
    engine = getattr(connectable, "engine", None)
    if isinstance(engine, Engine):
        return engine
    raise TypeError(
        f"expected a Database, Engine or Connection, not {type(connectable).__name__}"
    )


def reflect_table(
    engine: Database | Engine | Connection,
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


def get_or_create(
    session: Session,
    model: type[M],
    defaults: dict[str, Any] | None = None,
    **kwargs: Any,
) -> M:
    """Return the first ``model`` row matching ``kwargs``, or a new unsaved one.

    A new instance is built from ``kwargs`` (less any SQL expressions among
    them) and ``defaults``, and added to the session; it is not flushed.  The
    returned instance has ``_created`` set to whether it is new.

    Parameters:
        session: the ORM session.
        model: the mapped class.
        defaults: extra attributes for a new instance only.
        **kwargs: attribute values to filter by (``filter_by``).
    """
    instance = session.query(model).filter_by(**kwargs).first()
    if instance is not None:
        instance._created = False  # type: ignore[attr-defined]
        return instance
    params = {k: v for k, v in kwargs.items() if not isinstance(v, ClauseElement)}
    params.update(defaults or {})
    instance = model(**params)
    session.add(instance)
    instance._created = True  # type: ignore[attr-defined]
    return instance


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
    connectable: Database | Engine | Connection,
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


def db_session(engine: Database | Engine | Connection) -> Session:
    """A new ORM ``Session`` bound to ``engine`` (close it when done)."""
    return Session(bind=_bind(engine))


@renamed_parameters({"model_name": "name"})  # upstream's name
def get_db_model(db: Database, name: str) -> Any:
    """The automapped model called ``name`` (``db.model.<name>``).

    Raises:
        AttributeError: the database has no such model.
    """
    return getattr(db.model, name)
