"""ORM conveniences: race-safe get-or-create, updates, bulk operations, test setups.

The upstream `macrostrat.database.utils.get_or_create` (first match or a new,
unflushed instance) is unchanged; `get_or_create_instance` is the variant that
writes the row and survives a concurrent insert of the same row.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    MetaData,
    Result,
    delete,
    insert,
    inspect,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.sql import ClauseElement

from .errors import InvalidOptionError

__all__ = [
    "TEST_DATABASE_PREFIX",
    "bulk_delete",
    "bulk_insert",
    "bulk_update",
    "get_or_create",
    "get_or_create_instance",
    "is_test_database_name",
    "make_test_database_name",
    "recreate_all",
    "update_instance",
]

log = logging.getLogger(__name__)

M = TypeVar("M")


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


def get_or_create_instance(
    session: Session,
    model: type[M],
    defaults: Mapping[str, Any] | None = None,
    **filters: Any,
) -> tuple[M, bool]:
    """Return ``(instance, created)``: the row matching ``filters``, inserted if missing.

    A missing row is built from ``filters`` and ``defaults`` and flushed inside
    a SAVEPOINT. If another session inserted the same row meanwhile (the
    flush fails on a unique constraint), the savepoint is rolled back, the row
    is read again and returned with ``created=False``: of two racing sessions,
    one creates and the other gets the row. This needs a unique constraint
    covering ``filters``; without one, both could insert. The session's
    transaction is not committed.

    Parameters:
        session: the ORM session (its transaction is begun if needed).
        model: the mapped class.
        defaults: extra attributes for a new row only.
        **filters: column values to find the row by (``filter_by``); plain
            values only.

    Raises:
        InvalidOptionError: a filter is an SQL expression (it cannot be set on
            a new row).
        sqlalchemy.exc.IntegrityError: the insert failed and no matching row
            exists (another constraint was violated).
    """
    exprs = [
        k
        for k, v in filters.items()
        if isinstance(v, ClauseElement) or hasattr(v, "__clause_element__")
    ]
    if exprs:
        raise InvalidOptionError(
            f"get_or_create_instance filters must be plain values: {', '.join(exprs)}"
        )
    found = session.query(model).filter_by(**filters).one_or_none()
    if found is not None:
        return found, False
    instance = model(**{**filters, **(defaults or {})})
    try:
        with session.begin_nested():
            session.add(instance)
            session.flush()
    except IntegrityError:
        found = session.query(model).filter_by(**filters).one_or_none()
        if found is None:
            raise
        log.debug("get_or_create_instance lost a race for %s; using the row", model)
        return found, False
    return instance, True


def update_instance(
    session: Session, instance: M, values: Mapping[str, Any], *, flush: bool = True
) -> M:
    """Set ``values`` on ``instance``'s mapped attributes and flush; return it.

    Parameters:
        session: the session the instance belongs to (it is added if new).
        instance: a mapped object.
        values: attribute names and their new values.
        flush: flush at once, so constraint errors surface here.

    Raises:
        InvalidOptionError: a key is not a mapped attribute of the instance.
    """
    mapper = inspect(type(instance))
    unknown = sorted(set(values) - set(mapper.attrs.keys()))
    if unknown:
        raise InvalidOptionError(
            f"{type(instance).__name__} has no mapped attribute(s) {', '.join(unknown)}"
        )
    for key, value in values.items():
        setattr(instance, key, value)
    session.add(instance)
    if flush:
        session.flush()
    return instance


def _rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    result = [dict(row) for row in rows]
    if not all(isinstance(row, dict) for row in result):  # pragma: no cover
        raise TypeError("bulk operations take mappings")
    return result


def bulk_insert(
    session: Session, model: type, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Insert ``rows`` (dicts of column values) in one executemany; return how many.

    Runs in the session's transaction (not committed here).

    Parameters:
        session: the ORM session.
        model: the mapped class.
        rows: one mapping per row.
    """
    data = _rows(rows)
    if not data:
        return 0
    session.execute(insert(model), data)
    return len(data)


def _rowcount(result: Result[Any]) -> int:
    """The rows an ``UPDATE``/``DELETE`` matched (its result is a ``CursorResult``)."""
    return cast("CursorResult[Any]", result).rowcount


def bulk_update(
    session: Session, model: type, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Update rows by primary key from dicts (each holds the key and new values).

    Returns the number of rows the server updated (rows whose key matched
    nothing are not counted). Runs in the session's transaction.

    Parameters:
        session: the ORM session.
        model: the mapped class.
        rows: one mapping per row, with every primary key column.

    Raises:
        InvalidOptionError: a row lacks a primary key column.
    """
    data = _rows(rows)
    if not data:
        return 0
    mapper: Mapper[Any] = inspect(model)
    keys = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    if any(k not in row for row in data for k in keys):
        raise InvalidOptionError(
            f"every row needs the primary key ({', '.join(keys)}) for bulk_update"
        )
    count = 0
    for row in data:
        values = {k: v for k, v in row.items() if k not in keys}
        if not values:
            continue
        stmt = (
            update(model)
            .where(*[getattr(model, k) == row[k] for k in keys])
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        count += _rowcount(session.execute(stmt))
    return count


def bulk_delete(session: Session, model: type, keys: Sequence[Any]) -> int:
    """Delete rows by primary key; return how many the server deleted.

    Parameters:
        session: the ORM session.
        model: the mapped class (a single-column primary key).
        keys: primary key values, or mappings holding the key.

    Raises:
        InvalidOptionError: the model has a composite primary key.
    """
    mapper: Mapper[Any] = inspect(model)
    pk = mapper.primary_key
    if len(pk) != 1:
        raise InvalidOptionError("bulk_delete needs a single-column primary key")
    attr = mapper.get_property_by_column(pk[0]).key
    values = [k[attr] if isinstance(k, Mapping) else k for k in keys]
    if not values:
        return 0
    stmt = (
        delete(model)
        .where(getattr(model, attr).in_(values))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(session.execute(stmt))


def recreate_all(metadata: MetaData, bind: Engine | Connection) -> None:
    """Drop every table of ``metadata`` (if present), then create them all: for tests.

    Parameters:
        metadata: the tables.
        bind: an engine (one transaction) or a connection.
    """
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
        return
    metadata.drop_all(bind)
    metadata.create_all(bind)


TEST_DATABASE_PREFIX = "macrostrat_test_"
"""The prefix of test database names (the one the pytest plugin's clones use)."""

_TEST_NAME = re.compile(
    "^" + re.escape(TEST_DATABASE_PREFIX) + r"(?:[a-z0-9_]+_)?[0-9a-f]{12}$"
)


def make_test_database_name(label: str | None = None) -> str:
    """A fresh database name for tests: ``macrostrat_test_[<label>_]<12 hex digits>``.

    The prefix and random suffix keep it from colliding with a real database
    (and `is_test_database_name` recognises it, for cleanup scripts and
    guards); it fits PostgreSQL's 63-byte limit.

    Parameters:
        label: a readable part (lower-cased; characters other than letters,
            digits and ``_`` become ``_``; shortened to fit).
    """
    suffix = secrets.token_hex(6)
    if not label:
        return f"{TEST_DATABASE_PREFIX}{suffix}"
    clean = re.sub(r"[^a-z0-9_]", "_", label.lower()).strip("_") or "db"
    room = 63 - len(TEST_DATABASE_PREFIX) - len(suffix) - 1
    return f"{TEST_DATABASE_PREFIX}{clean[:room]}_{suffix}"


def is_test_database_name(name: str) -> bool:
    """Whether ``name`` was made by `make_test_database_name` (or follows its pattern)."""
    return bool(_TEST_NAME.match(name))
