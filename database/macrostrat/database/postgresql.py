"""PostgreSQL-specific inserts: ``ON CONFLICT`` modes, upserts, and table lookups.

`on_conflict` sets, for a block of code, what every Core or ORM ``INSERT``
executed on a PostgreSQL engine does when it hits the primary key of an
existing row::

    with on_conflict("do-nothing"):
        session.add_all(rows)   # rows whose key exists are skipped
        session.flush()

The mode is applied when a statement is *executed*: a ``before_execute``
listener (registered on every ``Engine`` when this module is imported) hands
SQLAlchemy a copy of the ``INSERT`` with the ``ON CONFLICT`` clause added.  The
caller's statement is never changed, and because the clause is part of the
copy, SQLAlchemy's compiled-statement cache keeps the variants apart: a
statement compiled in one mode is never reused in another.  Statements that
already have an ``ON CONFLICT`` clause, text SQL, and other dialects are left
alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Column, Connection, Engine, Insert, event, text
from sqlalchemy.dialects.postgresql import Insert as PGInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.dml import OnConflictDoNothing, OnConflictDoUpdate
from sqlalchemy.orm import Session

from ._connectable import DatabaseLike, database_like, engine_of
from .errors import InvalidOptionError

if TYPE_CHECKING:
    from sqlalchemy.sql.compiler import SQLCompiler


__all__ = [
    "OnConflictAction",
    "current_on_conflict",
    "on_conflict",
    "prefix_inserts",
    "table_exists",
    "upsert",
]

log = logging.getLogger(__name__)


class OnConflictAction(str, Enum):
    """What an ``INSERT`` does when a row with the same key exists."""

    DO_NOTHING = "do-nothing"
    """Skip the row (``ON CONFLICT (<key>) DO NOTHING``)."""
    DO_UPDATE = "do-update"
    """Update the existing row with the inserted values
    (``ON CONFLICT (<key>) DO UPDATE SET col = excluded.col``)."""
    RESTRICT = "restrict"
    """Raise ``IntegrityError`` (a plain ``INSERT``; the default)."""


OnConflictInput = OnConflictAction | str

_insert_mode: ContextVar[OnConflictAction] = ContextVar(
    "macrostrat_database_insert_mode", default=OnConflictAction.RESTRICT
)


def _coerce_action(action: OnConflictInput) -> OnConflictAction:
    try:
        return OnConflictAction(action)
    except ValueError as exc:
        allowed = ", ".join(repr(a.value) for a in OnConflictAction)
        raise InvalidOptionError(
            f"unknown on-conflict action {action!r}; expected one of {allowed}"
        ) from exc


@contextlib.contextmanager
def on_conflict(action: OnConflictInput = "restrict") -> Iterator[OnConflictAction]:
    """Set what ``INSERT`` statements do on a key conflict inside the block.

    Applies to every Core and ORM ``INSERT`` executed on a PostgreSQL engine in
    this thread or task while the block runs (the mode lives in a context
    variable; blocks nest).  The conflict target is the table's primary key.

    - ``"restrict"``: a plain ``INSERT`` (a conflict raises ``IntegrityError``).
    - ``"do-nothing"``: ``ON CONFLICT (<pk>) DO NOTHING``; a table without a
      primary key gets a bare ``ON CONFLICT DO NOTHING``.
    - ``"do-update"``: ``ON CONFLICT (<pk>) DO UPDATE SET c = excluded.c`` for
      each inserted column that is not part of the key (inserted NULLs are
      written too); also for ``executemany``.  With no such column it acts
      like do-nothing.  A table without a primary key raises
      `InvalidOptionError` when an ``INSERT`` runs.

    Statements that already carry an ``ON CONFLICT`` clause keep it.

    Parameters:
        action: an `OnConflictAction` or its value.

    Raises:
        InvalidOptionError: ``action`` is not one of the allowed values.
    """
    mode = _coerce_action(action)
    token = _insert_mode.set(mode)
    try:
        yield mode
    finally:
        _insert_mode.reset(token)


def current_on_conflict() -> OnConflictAction:
    """The on-conflict mode in force here (`OnConflictAction.RESTRICT` by default)."""
    return _insert_mode.get()


def _column_keys(stmt: Insert, parameter_keys: Sequence[str]) -> list[str]:
    """Keys of the columns ``stmt`` inserts, given the keys of its execution parameters."""
    table = stmt.table
    keys: list[Any]
    if stmt._values:
        keys = list(stmt._values)
    elif stmt._multi_values:
        first = stmt._multi_values[0][0]
        if isinstance(first, Mapping):
            keys = list(first)
        else:
            keys = [col.key for col in list(table.c)[: len(first)]]
    elif stmt.select is not None:
        keys = list(stmt._select_names or ())
    else:
        keys = list(parameter_keys)
    return [key if isinstance(key, str) else key.key for key in keys]


def _with_on_conflict(
    stmt: Insert, action: OnConflictAction, parameter_keys: Sequence[str] = ()
) -> Insert:
    """A copy of ``stmt`` with the ``ON CONFLICT`` clause for ``action``."""
    if action is OnConflictAction.RESTRICT or stmt._post_values_clause is not None:
        return stmt
    table = stmt.table
    primary_key = getattr(table, "primary_key", None)
    key_columns: list[Column[Any]] = list(primary_key.columns) if primary_key else []
    clause: OnConflictDoNothing | OnConflictDoUpdate
    if action is OnConflictAction.DO_NOTHING:
        clause = OnConflictDoNothing(index_elements=key_columns or None)
    else:
        if not key_columns:
            raise InvalidOptionError(
                f"on_conflict('do-update') needs a primary key, and table "
                f"{getattr(table, 'fullname', table)!s} has none"
            )
        key_names = {col.key for col in key_columns}
        excluded = pg_insert(table).excluded
        updates = {
            key: excluded[key]
            for key in _column_keys(stmt, parameter_keys)
            if key not in key_names and key in excluded
        }
        if updates:
            clause = OnConflictDoUpdate(index_elements=key_columns, set_=updates)
        else:
            clause = OnConflictDoNothing(index_elements=key_columns)
    copy = stmt._generate()
    copy._post_values_clause = clause
    return copy


def _apply_insert_mode(
    conn: Connection,
    clauseelement: Any,
    multiparams: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    execution_options: Mapping[str, Any],
) -> tuple[Any, Sequence[Mapping[str, Any]], Mapping[str, Any]]:
    """``before_execute`` listener: add the current mode's ``ON CONFLICT`` clause."""
    mode = _insert_mode.get()
    if (
        mode is OnConflictAction.RESTRICT
        or not isinstance(clauseelement, Insert)
        or clauseelement._post_values_clause is not None
        or conn.dialect.name != "postgresql"
    ):
        return clauseelement, multiparams, params
    first = multiparams[0] if multiparams else params
    keys = list(first) if first else []
    return _with_on_conflict(clauseelement, mode, keys), multiparams, params


if not event.contains(Engine, "before_execute", _apply_insert_mode):
    event.listen(Engine, "before_execute", _apply_insert_mode, retval=True)


def prefix_inserts(insert: Insert, compiler: SQLCompiler, **kw: Any) -> str:
    """Compile ``insert`` with the current `on_conflict` mode applied.

    Kept for code that registered it as a ``@compiles(Insert)`` hook.  It is no
    longer registered by this package: the mode is applied at execution time,
    where the compiled-statement cache can tell the modes apart.  ``insert``
    itself is not changed.

    Parameters:
        insert: the statement being compiled.
        compiler: the SQLAlchemy compiler.
        **kw: passed to the compiler.
    """
    keys = list(compiler.column_keys or ())
    # SQLAlchemy's visit_* methods are not annotated; they return the SQL text.
    visit_insert = cast("Callable[..., str]", compiler.visit_insert)
    return visit_insert(_with_on_conflict(insert, _insert_mode.get(), keys), **kw)


def _key_name(element: Any) -> str:
    return element if isinstance(element, str) else element.key


def upsert(
    table: Any,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    index_elements: Sequence[str | Column[Any]] | None = None,
    on_conflict: OnConflictInput = OnConflictAction.DO_UPDATE,
) -> PGInsert:
    """Build (not run) a PostgreSQL ``INSERT`` of ``values`` with an ``ON CONFLICT`` clause.

    With ``"do-update"``, a conflicting row gets the supplied values
    (``SET col = excluded.col``) for exactly the columns in ``values`` that
    are not in ``index_elements``; columns not supplied keep their stored
    values.  When every supplied column is part of the key there is nothing to
    update, and the row is left as it is (``DO NOTHING``).

    Parameters:
        table: a ``Table`` or mapped class.
        values: one row (column key -> value), or a list of rows with the same
            keys (a multi-row ``VALUES``).
        index_elements: the columns of the unique index that decides what a
            conflict is (default: the primary key).  For ``"do-nothing"``, None
            means any unique constraint.
        on_conflict: ``"do-update"`` (default), ``"do-nothing"`` or
            ``"restrict"`` (a plain ``INSERT``).

    Raises:
        InvalidOptionError: an unknown ``on_conflict``, ``"do-update"`` on a
            table without a primary key and no ``index_elements``, or a key in
            ``values`` that is not a column of ``table``.
    """
    action = _coerce_action(on_conflict)
    stmt = pg_insert(table).values(values)
    if action is OnConflictAction.RESTRICT:
        return stmt
    if action is OnConflictAction.DO_NOTHING:
        return stmt.on_conflict_do_nothing(index_elements=index_elements)
    target = stmt.table
    if index_elements is None:
        primary_key = getattr(target, "primary_key", None)
        index_elements = list(primary_key.columns) if primary_key else []
        if not index_elements:
            raise InvalidOptionError(
                f"upsert(on_conflict='do-update') on table "
                f"{getattr(target, 'fullname', target)!s}, which has no primary "
                "key: pass index_elements="
            )
    key_names = {_key_name(element) for element in index_elements}
    rows = [values] if isinstance(values, Mapping) else list(values)
    supplied = [_key_name(key) for key in (rows[0] if rows else {})]
    excluded = stmt.excluded
    unknown = [key for key in supplied if key not in excluded]
    if unknown:
        raise InvalidOptionError(
            f"upsert: {', '.join(map(repr, unknown))} not column(s) of table "
            f"{getattr(target, 'fullname', target)!s}"
        )
    updates = {key: excluded[key] for key in supplied if key not in key_names}
    if not updates:
        return stmt.on_conflict_do_nothing(index_elements=index_elements)
    return stmt.on_conflict_do_update(index_elements=index_elements, set_=updates)


_TABLE_EXISTS = text(
    "SELECT EXISTS ("
    " SELECT 1 FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relname = :name"
    " AND n.nspname = COALESCE(CAST(:schema AS text), current_schema())"
    " AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))"
)


def table_exists(
    db: DatabaseLike | Engine | Connection | Session,
    table_name: str,
    schema: str | None = None,
) -> bool:
    """Whether a table, view, materialized view or foreign table exists.

    Names are matched exactly (no case folding, no parsing of dots).

    Parameters:
        db: a `Database`, ``Engine``, ``Connection`` or ``Session``.  A
            `Database` is asked through what it works on now: its session's
            open transaction, the connection of the `transaction`/`savepoint`
            block the thread is in, or its session connection (so tables it
            created but has not committed count, and so do its temporary
            tables and ``search_path``); no transaction is left open.
        table_name: the table's name.
        schema: its schema (default: the current schema, the first existing
            schema on the search path, usually ``public``).
    """
    params = {"name": table_name, "schema": schema}
    if isinstance(db, (Connection, Session)):
        return bool(db.execute(_TABLE_EXISTS, params).scalar())
    database = database_like(db)
    if database is not None:
        session = database.session
        if session.in_transaction():
            return bool(session.execute(_TABLE_EXISTS, params).scalar())
        # What its current block, or its session, sees.
        conn = database.connection()
        began = not conn.in_transaction()
        try:
            return bool(conn.execute(_TABLE_EXISTS, params).scalar())
        finally:
            if began:
                conn.rollback()  # leave no transaction open
    engine = engine_of(db)
    if engine is None:
        raise TypeError(
            f"table_exists() needs a Database, Engine, Connection or Session, "
            f"not {type(db).__name__}"
        )
    with engine.connect() as conn:
        return bool(conn.execute(_TABLE_EXISTS, params).scalar())
