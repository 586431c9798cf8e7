"""The errors a failed statement raises: our classes and SQLAlchemy's at once.

Each failure is a real one, from a real PostgreSQL server, raised through
``Database.run_sql`` and ``query.run_query``.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc as sa_exc
from psycopg import errors as pg_errors

from macrostrat.database import Database, errors
from macrostrat.database._sql.results import statement_error
from macrostrat.database.errors import (
    BindParameterError,
    DatabaseError,
    DataError,
    DBAPIError,
    ExecutionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    MacrostratDatabaseError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StatementError,
    StatementNotAllowedError,
)
from macrostrat.database.query import run_query

# (our class, SQLAlchemy's class, its SQLAlchemy parent) for each DBAPI class
MIRRORED = [
    (DBAPIError, sa_exc.DBAPIError, sa_exc.StatementError),
    (InterfaceError, sa_exc.InterfaceError, sa_exc.DBAPIError),
    (DatabaseError, sa_exc.DatabaseError, sa_exc.DBAPIError),
    (DataError, sa_exc.DataError, sa_exc.DatabaseError),
    (OperationalError, sa_exc.OperationalError, sa_exc.DatabaseError),
    (IntegrityError, sa_exc.IntegrityError, sa_exc.DatabaseError),
    (InternalError, sa_exc.InternalError, sa_exc.DatabaseError),
    (ProgrammingError, sa_exc.ProgrammingError, sa_exc.DatabaseError),
    (NotSupportedError, sa_exc.NotSupportedError, sa_exc.DatabaseError),
]

# name, setup-free SQL that fails, our class, SQLAlchemy's class, SQLSTATE
FAILURES = [
    (
        "duplicate key",
        "INSERT INTO item (id, name) VALUES (1, 'again')",
        IntegrityError,
        sa_exc.IntegrityError,
        "23505",
    ),
    (
        "not null",
        "INSERT INTO item (id, name) VALUES (2, NULL)",
        IntegrityError,
        sa_exc.IntegrityError,
        "23502",
    ),
    ("division by zero", "SELECT 1 / 0", DataError, sa_exc.DataError, "22012"),
    ("syntax error", "SELEC 1", ProgrammingError, sa_exc.ProgrammingError, "42601"),
    (
        "missing table",
        "SELECT * FROM no_such_table",
        ProgrammingError,
        sa_exc.ProgrammingError,
        "42P01",
    ),
]
FAILURE_IDS = [f[0] for f in FAILURES]


@pytest.fixture(scope="module")
def edb(db: Database) -> Database:
    """The module database with ``item (id int PRIMARY KEY, name text NOT NULL)``."""
    db.run_sql(
        "CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO item VALUES (1, 'one')",
        raise_errors=True,
    )
    return db


def _important(err: Any) -> tuple[Any, ...]:
    """What a copy of a statement error must keep."""
    return (
        type(err),
        str(err),
        err.args,
        err.index,
        err.source,
        err.line,
        err.statement,
        err.params,
        type(err.orig),
        err.orig.sqlstate,
        str(err.orig),
    )


def _check(err: BaseException, ours: type, theirs: type, sqlstate: str) -> None:
    """``err`` is ours and SQLAlchemy's, with the psycopg error kept."""
    assert type(err) is ours
    assert type(err).__module__ == "macrostrat.database.errors"
    for cls in (
        ours,
        theirs,
        StatementError,
        MacrostratDatabaseError,
        ExecutionError,
        DBAPIError,
        DatabaseError,
        sa_exc.DatabaseError,
        sa_exc.DBAPIError,
        sa_exc.StatementError,
        sa_exc.SQLAlchemyError,
    ):
        assert isinstance(err, cls), cls
    assert isinstance(err, Exception)
    orig = err.orig  # type: ignore[attr-defined]
    assert isinstance(orig, pg_errors.Error)
    assert orig.sqlstate == sqlstate
    assert err.__cause__ is orig
    assert err.driver_exception is orig  # type: ignore[attr-defined]


# -- the classes ---------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs", "parent"), MIRRORED)
def test_classes_are_static_and_mirror_sqlalchemy(
    ours: type, theirs: type, parent: type
) -> None:
    assert ours.__module__ == "macrostrat.database.errors"
    assert ours.__name__ == theirs.__name__
    assert ours.__name__ in errors.__all__
    assert getattr(errors, ours.__name__) is ours
    assert issubclass(ours, theirs)
    assert issubclass(ours, parent)
    assert issubclass(ours, StatementError)
    assert issubclass(ours, ExecutionError)
    assert issubclass(ours, MacrostratDatabaseError)
    # our tree has the shape of SQLAlchemy's
    if theirs is not sa_exc.DBAPIError:
        assert issubclass(ours, getattr(errors, parent.__name__))
    # each of our classes sits before every SQLAlchemy class in the MRO
    mro = ours.__mro__
    assert mro.index(MacrostratDatabaseError) < mro.index(theirs)


def test_the_roots() -> None:
    assert ExecutionError.__module__ == "macrostrat.database.errors"
    assert issubclass(ExecutionError, StatementError)
    assert issubclass(ExecutionError, sa_exc.StatementError)
    assert not issubclass(ExecutionError, sa_exc.DBAPIError)
    assert "ExecutionError" in errors.__all__
    # StatementNotAllowedError is ours only
    assert issubclass(StatementNotAllowedError, StatementError)
    assert not issubclass(StatementNotAllowedError, sa_exc.StatementError)


def test_bind_parameter_error_is_also_a_programming_error() -> None:
    for cls in (
        ProgrammingError,
        sa_exc.ProgrammingError,
        sa_exc.DBAPIError,
        sa_exc.StatementError,
        StatementError,
        ValueError,
    ):
        assert issubclass(BindParameterError, cls), cls


# -- real failures -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sql", "ours", "theirs", "sqlstate"), FAILURES, ids=FAILURE_IDS
)
def test_run_sql_raises_ours_and_sqlalchemys(
    edb: Database, name: str, sql: str, ours: type, theirs: type, sqlstate: str
) -> None:
    with pytest.raises(theirs) as info:
        edb.run_sql(f"SELECT 1;\n\n{sql}", raise_errors=True)
    err = info.value
    _check(err, ours, theirs, sqlstate)
    assert (err.index, err.source, err.line) == (1, None, 3)  # type: ignore[attr-defined]
    assert err.statement == sql  # type: ignore[attr-defined]
    assert str(err).startswith("statement 2 (line 3) failed")
    assert str(err).endswith("\n  " + sql)
    # our own names catch it too
    with pytest.raises(ours):
        edb.run_sql(sql, raise_errors=True)
    with pytest.raises(StatementError):
        edb.run_sql(sql, raise_errors=True)


@pytest.mark.parametrize(
    ("name", "sql", "ours", "theirs", "sqlstate"), FAILURES, ids=FAILURE_IDS
)
def test_run_query_raises_ours_and_sqlalchemys(
    edb: Database, name: str, sql: str, ours: type, theirs: type, sqlstate: str
) -> None:
    with pytest.raises(ours) as info:
        run_query(edb.engine, sql)
    err = info.value
    _check(err, ours, theirs, sqlstate)
    assert (err.index, err.line) == (0, 1)  # type: ignore[attr-defined]
    assert str(err).startswith("statement 1 (line 1) failed")


@pytest.mark.parametrize(
    ("name", "sql", "ours", "theirs", "sqlstate"), FAILURES, ids=FAILURE_IDS
)
def test_errors_pickle_and_copy(
    edb: Database, name: str, sql: str, ours: type, theirs: type, sqlstate: str
) -> None:
    with pytest.raises(ours) as info:
        edb.run_sql(sql, raise_errors=True)
    err = info.value
    for again in (
        pickle.loads(pickle.dumps(err)),
        pickle.loads(pickle.dumps(err, protocol=0)),
        copy.copy(err),
        copy.deepcopy(err),
    ):
        assert _important(again) == _important(err)
        _check(again, ours, theirs, sqlstate)


def test_source_params_and_error_line(edb: Database, tmp_path: Path) -> None:
    """A file's name and lines, the parameters and the server's error position."""
    path = tmp_path / "load.sql"
    path.write_text(
        "SELECT 1;\n"
        "INSERT INTO item (id, name)\n"
        "  VALUES (:id, :name);\n"
        "SELECT 2;\n"
        "SELECT *\n"
        "  FROM nowhere;\n"
    )
    with pytest.raises(IntegrityError) as info:
        edb.run_sql(path, {"id": 1, "name": "x"}, raise_errors=True)
    err = info.value
    assert (err.index, err.source, err.line) == (1, str(path), 2)
    assert err.params is not None
    assert "1" in repr(err.params)
    assert "x" in repr(err.params)
    assert str(err).startswith(f"statement 2 ({path}, line 2) failed: duplicate key")
    assert "DETAIL: Key (id)=(1) already exists." in str(err)
    copied = pickle.loads(pickle.dumps(err))
    assert (copied.source, copied.params, copied.statement) == (
        err.source,
        err.params,
        err.statement,
    )
    with pytest.raises(ProgrammingError) as missing:
        edb.run_sql(path, {"id": 99, "name": "x"}, raise_errors=True)
    assert missing.value.line == 5
    assert str(missing.value).startswith(
        f"statement 4 ({path}, line 5) failed at line 6"
    )
    edb.run_sql("DELETE FROM item WHERE id = 99", raise_errors=True)


def test_swallowed_errors_are_the_same_classes(edb: Database) -> None:
    res = edb.run_sql("SELECT 1 / 0; INSERT INTO item VALUES (1, 'x')")
    first, second = res.errors
    _check(first, DataError, sa_exc.DataError, "22012")
    _check(second, IntegrityError, sa_exc.IntegrityError, "23505")


def test_bind_parameter_error_is_caught_as_programming_error(edb: Database) -> None:
    with pytest.raises(sa_exc.ProgrammingError) as info:
        run_query(edb.engine, "SELECT :absent")
    err = info.value
    assert type(err) is BindParameterError
    assert err.orig is None
    assert err.parameter == "absent"
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), str(again), again.parameter, again.index) == (
        BindParameterError,
        str(err),
        "absent",
        err.index,
    )


# -- statement_error itself ----------------------------------------------------


def test_statement_error_falls_back_for_other_errors() -> None:
    cause = ValueError("not a driver error")
    err = statement_error(cause, index=0, source=None, line=1, text="SELECT 1")
    assert type(err) is ExecutionError
    assert isinstance(err, sa_exc.StatementError)
    assert not isinstance(err, sa_exc.DBAPIError)
    assert err.orig is cause
    assert err.__cause__ is cause
    assert str(err).startswith("statement 1 (line 1) failed: not a driver error")
    interrupt = KeyboardInterrupt()
    assert (
        statement_error(interrupt, index=0, source=None, line=1, text="SELECT 1")
        is interrupt
    )
