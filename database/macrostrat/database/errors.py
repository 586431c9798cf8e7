"""Errors raised by macrostrat.database.

Every error derives from `MacrostratDatabaseError`.  Where a builtin fits, the
error also derives from it, so ``except LookupError`` or ``except ValueError``
keeps working::

    MacrostratDatabaseError
    ├── SQLSyntaxError (ValueError)        a SQL source could not be split
    ├── StatementError                     a statement of a SQL source failed
    │   ├── ExecutionError (sqlalchemy.exc.StatementError)
    │   │   │                              it failed while running; raised as such
    │   │   │                              for an error that is not the driver's
    │   │   └── DBAPIError (sqlalchemy.exc.DBAPIError)
    │   │       │                          the driver or the server refused it;
    │   │       │                          ``.orig`` is the psycopg error
    │   │       ├── InterfaceError (sqlalchemy.exc.InterfaceError)
    │   │       └── DatabaseError (sqlalchemy.exc.DatabaseError)
    │   │           ├── DataError (sqlalchemy.exc.DataError)
    │   │           ├── OperationalError (sqlalchemy.exc.OperationalError)
    │   │           ├── IntegrityError (sqlalchemy.exc.IntegrityError)
    │   │           ├── InternalError (sqlalchemy.exc.InternalError)
    │   │           ├── ProgrammingError (sqlalchemy.exc.ProgrammingError)
    │   │           │   └── BindParameterError (ValueError)
    │   │           │                  parameters do not fit a statement
    │   │           └── NotSupportedError (sqlalchemy.exc.NotSupportedError)
    │   └── StatementNotAllowedError (ValueError)
    │                                  a statement cannot run in this mode
    ├── AutomapError                       reflection or mapping (upstream's name)
    │   ├── ModelNotFoundError (LookupError) no ORM model for a table
    │   └── ModelCacheError                the model cache cannot be used safely
    ├── TableNotFoundError (LookupError, sqlalchemy.exc.NoSuchTableError)
    │                                      get_table found no such table or view
    ├── DatabaseExistsError                create_database on an existing name
    ├── DatabaseNotFoundError (LookupError) drop_database on a missing name
    ├── DatabaseInUseError (RuntimeError)  other sessions block a drop or copy
    ├── BulkLoadError                      a COPY load failed; none of its rows kept
    ├── CommitOutcomeUnknown               the connection was lost during COMMIT and
    │                                      the server could not say what became of it
    ├── UnsafeRetryError (RuntimeError)    a retried unit of work commits on its own
    ├── TransferError (RuntimeError)       a dump, restore or move failed
    │   ├── ToolError                      pg_dump/pg_restore/psql exited non-zero
    │   ├── ToolNotFoundError (FileNotFoundError) no client tools to run
    │   └── ToolVersionError               the client tools are older than the server
    ├── InvalidOptionError (TypeError)     an unknown or invalid keyword option
    ├── NoResultError (LookupError)        run_query got no result
    ├── InvalidTenantError (ValueError)    tenant_scope refused a tenant id
    └── TransactionError                   a transaction or savepoint could not
                                           end as asked (its work was rolled back)

A failed statement raises the class under `DBAPIError` named like the
SQLAlchemy class SQLAlchemy itself would have raised for the psycopg error, so
``except sqlalchemy.exc.IntegrityError`` (or ``DatabaseError``, ``DBAPIError``,
``sqlalchemy.exc.StatementError``), ``except StatementError`` and ``except
macrostrat.database.errors.IntegrityError`` all catch a duplicate key.  Their
``statement`` is the statement's text (in both senses), ``params`` its
parameters and ``orig`` the psycopg error (``err.orig.sqlstate``).

The driver's or SQLAlchemy's own exception is always kept as ``__cause__``.

Longer than 400 lines because it is the package's one error root: the whole
tree above, each class with its documented attributes and pickling support.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy.exc as _sa

__all__ = [
    "AutomapError",
    "BindParameterError",
    "BulkLoadError",
    "CommitOutcomeUnknown",
    "DBAPIError",
    "DataError",
    "DatabaseError",
    "DatabaseExistsError",
    "DatabaseInUseError",
    "DatabaseNotFoundError",
    "ExecutionError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidOptionError",
    "InvalidTenantError",
    "MacrostratDatabaseError",
    "ModelCacheError",
    "ModelNotFoundError",
    "NoResultError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "SQLSyntaxError",
    "StatementError",
    "StatementNotAllowedError",
    "TableNotFoundError",
    "ToolError",
    "ToolNotFoundError",
    "ToolVersionError",
    "TransactionError",
    "TransferError",
    "UnsafeRetryError",
    "describe_error",
]


class MacrostratDatabaseError(Exception):
    """Base class of every error raised by macrostrat.database."""


class SQLSyntaxError(MacrostratDatabaseError, ValueError):
    """A lexical error in SQL source: an unterminated literal, comment or COPY block.

    Attributes:
        line: 1-based line where the offending construct starts.
        column: 1-based column (in characters) where it starts.
        source: the file name or other origin of the text, or None.
        reason: the message without its location.
    """

    def __init__(
        self, reason: str, line: int, column: int, source: str | None = None
    ) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        self.source = source
        where = f" of {source}" if source else ""
        super().__init__(f"{reason} at line {line}, column {column}{where}")

    def __reduce__(
        self,
    ) -> tuple[type[SQLSyntaxError], tuple[str, int, int, str | None]]:
        """Pickle with the structured attributes (not the formatted message)."""
        return (type(self), (self.reason, self.line, self.column, self.source))


class StatementError(MacrostratDatabaseError):
    """A statement from a SQL source failed.

    Raised as one of its subclasses: `ExecutionError` (the statement ran and
    failed; the `DBAPIError` classes below it for a driver error) or
    `StatementNotAllowedError` (it was refused before running).

    Attributes:
        index: position of the statement in its source (0-based).
        source: the file name, or None for SQL given as a string.
        line: the line (1-based) where the statement starts in its source.
        statement: the statement's text.
    """

    index: int | None
    source: str | None
    line: int | None
    statement: str | None

    def _set_context(
        self,
        index: int | None,
        source: str | None,
        line: int | None,
        statement: str | None,
    ) -> None:
        """Record where the statement came from (used by the subclasses)."""
        self.index = index
        self.source = source
        self.line = line
        self.statement = statement


class AutomapError(MacrostratDatabaseError):
    """Reflecting tables or mapping models failed (upstream's name, kept).

    Upstream defined it in ``macrostrat.database.mapper`` without raising it;
    here it is the base of `ModelNotFoundError` and `ModelCacheError`.
    """


class ModelNotFoundError(AutomapError, LookupError):
    """No ORM model exists (or could be reflected) for a table."""


class ModelCacheError(AutomapError):
    """The model cache file cannot be used safely (for example: writable by others)."""


class TableNotFoundError(MacrostratDatabaseError, _sa.NoSuchTableError, LookupError):
    """No table or view by that name (``sqlalchemy.exc.NoSuchTableError`` too).

    The message names the schema searched and the closest existing names.

    Attributes:
        table: the table name asked for.
        schema: the schema searched (``"public"`` for the default schema).
        requested: the name as given (``"table"`` or ``"schema.table"``).
        suggestions: the closest existing names, best first.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str,
        schema: str,
        requested: str | None = None,
        suggestions: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.table = table
        self.schema = schema
        self.requested = requested if requested is not None else table
        self.suggestions = list(suggestions)

    def __reduce__(self) -> Any:
        return (
            _restore_table_not_found,
            (self.args[0], self.table, self.schema, self.requested, self.suggestions),
        )


def _restore_table_not_found(
    message: str, table: str, schema: str, requested: str, suggestions: list[str]
) -> TableNotFoundError:
    """Unpickle a `TableNotFoundError`."""
    return TableNotFoundError(
        message,
        table=table,
        schema=schema,
        requested=requested,
        suggestions=suggestions,
    )


class DatabaseExistsError(MacrostratDatabaseError):
    """A database of that name already exists."""


class DatabaseNotFoundError(MacrostratDatabaseError, LookupError):
    """A database of that name does not exist."""


class DatabaseInUseError(MacrostratDatabaseError, RuntimeError):
    """Other sessions are connected to a database that must be dropped or copied.

    Attributes:
        database: the database's name.
        sessions: how many other sessions were connected.
    """

    def __init__(self, message: str, *, database: str, sessions: int) -> None:
        super().__init__(message)
        self.database = database
        self.sessions = sessions


class InvalidOptionError(MacrostratDatabaseError, TypeError):
    """An unknown keyword option, or an option given an invalid value."""


class TransactionError(MacrostratDatabaseError):
    """A transaction or savepoint could not end the way it was asked to.

    Raised when ``Database.transaction()`` or ``Database.savepoint()`` finds,
    on exit, that the work inside it cannot be committed (a statement failed
    and was not rolled back to a savepoint) or that its savepoint no longer
    exists. Everything the block did has been rolled back when it is raised.
    """


class ExecutionError(StatementError, _sa.StatementError):
    """A statement failed while it ran; also a ``sqlalchemy.exc.StatementError``.

    Raised as such when what failed is not a driver error (``orig`` says what
    it was); a driver error raises one of the `DBAPIError` classes.  ``str()``
    is our message (``statement 3 (schema.sql, line 12) failed: …`` and the
    start of the statement), not SQLAlchemy's.  Instances pickle and copy with
    their class, message and attributes (``orig`` included, kept as
    ``__cause__`` again).

    Parameters:
        message: the whole message.
        orig: the exception that made the statement fail; also set as
            ``__cause__``.
        statement: the statement's text.
        params: its parameters, as SQLAlchemy keeps them.
        index: the statement's position in the run (see `StatementError`).
        source: the file it came from, or None.
        line: its first line there.

    Attributes:
        index, source, line, statement: see `StatementError` (``statement`` is
            also SQLAlchemy's ``statement``).
        params: the statement's parameters, or None.
        orig: the exception that made it fail, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        orig: BaseException | None = None,
        statement: str | None = None,
        params: Any = None,
        index: int | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        _sa.StatementError.__init__(self, message, statement, params, orig)
        self._set_context(index, source, line, statement)
        if orig is not None:
            self.__cause__ = orig

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the class, the message and the attributes."""
        return (
            _restore_execution_error,
            (type(self), tuple(self.args), dict(self.__dict__)),
        )


def _restore_execution_error(
    cls: type[ExecutionError], args: tuple[Any, ...], state: dict[str, Any]
) -> ExecutionError:
    """Unpickle an `ExecutionError` (without running ``__init__``)."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    orig = state.get("orig")
    if isinstance(orig, BaseException):
        err.__cause__ = orig
    return err


class DBAPIError(ExecutionError, _sa.DBAPIError):
    """The driver or the server refused a statement (``sqlalchemy.exc.DBAPIError``).

    ``orig`` is the psycopg error (``err.orig.sqlstate``, ``err.orig.diag``).
    Raised as such only for a psycopg error SQLAlchemy has no subclass for;
    see its subclasses.
    """


class InterfaceError(DBAPIError, _sa.InterfaceError):
    """The driver's interface failed (``sqlalchemy.exc.InterfaceError``)."""


class DatabaseError(DBAPIError, _sa.DatabaseError):
    """The database refused a statement (``sqlalchemy.exc.DatabaseError``)."""


class DataError(DatabaseError, _sa.DataError):
    """A problem with the data: division by zero, a bad value (``sqlalchemy.exc.DataError``)."""


class OperationalError(DatabaseError, _sa.OperationalError):
    """The database's operation failed: a cancelled query, a lost connection…

    Also a ``sqlalchemy.exc.OperationalError``.
    """


class IntegrityError(DatabaseError, _sa.IntegrityError):
    """A constraint was violated: a duplicate key, a NOT NULL column…

    Also a ``sqlalchemy.exc.IntegrityError``.
    """


class InternalError(DatabaseError, _sa.InternalError):
    """The database hit an internal error (``sqlalchemy.exc.InternalError``)."""


class ProgrammingError(DatabaseError, _sa.ProgrammingError):
    """The statement is wrong: a syntax error, a missing table or column…

    Also a ``sqlalchemy.exc.ProgrammingError``.
    """


class NotSupportedError(DatabaseError, _sa.NotSupportedError):
    """The database does not support what was asked (``sqlalchemy.exc.NotSupportedError``)."""


class BindParameterError(ProgrammingError, ValueError):
    """Parameters that do not fit a statement; nothing was sent to the server.

    Raised (whatever ``raise_errors`` says) for a missing named parameter, a
    wrong number of positional parameters, mixed placeholder styles in one
    statement, a ``{name}`` whose value is not a psycopg ``Composable`` (or
    whose rendering would end the literal, body or comment it stands in), or
    a named parameter that appears only inside a dollar-quoted body, where
    the server would not bind it.
    It is also a ``sqlalchemy.exc.StatementError`` (what SQLAlchemy raised for
    a missing bind value), a ``sqlalchemy.exc.ProgrammingError`` (what it
    raised for a wrong number of parameters) and a ``ValueError``.  Its
    ``orig`` is None: no driver error was raised.

    Parameters:
        message: the whole message.
        index: the statement's position in the run (see `StatementError`).
        source: the file it came from, or None.
        line: its first line there.
        statement: its text.
        parameter: the name of the offending parameter, or None.

    Attributes:
        index, source, line, statement: see `StatementError`.
        parameter: the name of the offending parameter, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        source: str | None = None,
        line: int | None = None,
        statement: str | None = None,
        parameter: str | None = None,
    ) -> None:
        super().__init__(
            message, statement=statement, index=index, source=source, line=line
        )
        self.parameter = parameter


class StatementNotAllowedError(StatementError, ValueError):
    """A statement that cannot run the way it was asked to; nothing was run.

    For example ``VACUUM`` or ``CREATE DATABASE`` (which cannot run inside a
    transaction block) or ``COMMIT`` inside a transaction the caller holds or
    with ``atomic=True``, or a psql meta-command such as ``\\connect``.

    Attributes:
        index, source, line, statement: see `StatementError`.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        source: str | None = None,
        line: int | None = None,
        statement: str | None = None,
    ) -> None:
        super().__init__(message)
        self._set_context(index, source, line, statement)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the message and the attributes."""
        return (type(self), (self.args[0],), dict(self.__dict__))


class NoResultError(MacrostratDatabaseError, LookupError):
    """``run_query`` ran no statement that gave a result.

    The SQL was empty, its statement was skipped, or it failed and
    ``raise_errors=False`` swallowed the error (then kept as ``__cause__``).
    """


class InvalidTenantError(MacrostratDatabaseError, ValueError):
    """``Database.tenant_scope`` refused a tenant id; no SQL was run.

    The validator's own ``ValueError`` or ``TypeError`` is kept as ``__cause__``.
    """


class CommitOutcomeUnknown(MacrostratDatabaseError):
    """The connection was lost during ``COMMIT`` and the outcome is not known.

    Before committing, the transaction's id was read
    (``pg_current_xact_id_if_assigned()``); after the loss a new connection
    asked ``pg_xact_status`` and got no definite answer: the server could not
    be reached, the transaction was still in progress, or its id was unknown
    there (a failover to a standby that never saw it). The work may or may not
    be committed: check before running it again. Never treated as transient
    by the retry helpers. The lost-connection error is the ``__cause__``.

    Attributes:
        xid: the transaction's id (``xid8`` as text), or None when it could
            not be read (a server older than PostgreSQL 13).
        status: what ``pg_xact_status`` said (``"in progress"``), or None.
    """

    def __init__(
        self, message: str, *, xid: str | None = None, status: str | None = None
    ) -> None:
        self.xid = xid
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the message and the attributes."""
        return (_rebuild_outcome_unknown, (self.args[0], self.xid, self.status))


def _rebuild_outcome_unknown(
    message: str, xid: str | None, status: str | None
) -> CommitOutcomeUnknown:
    return CommitOutcomeUnknown(message, xid=xid, status=status)


class UnsafeRetryError(MacrostratDatabaseError, RuntimeError):
    """A retried unit of work commits on its own: running it again could commit twice.

    Raised by `postgres_retry`, `retrying` and ``Database.run_with_retry``
    before the second transaction that writes is committed inside one attempt,
    and by ``run_sql`` called outside a transaction inside a retried unit (it
    commits statement by statement). Run the work in one ``db.transaction()``
    (``run_with_retry`` opens one) instead.
    """


class BulkLoadError(MacrostratDatabaseError):
    """A bulk load failed before it committed: the table holds none of its rows.

    A connection lost during the load's ``COMMIT`` is resolved with the
    server first (see `CommitOutcomeUnknown`): a load the server committed
    is reported as a success, one it aborted as this error, and one whose
    outcome is unknown as `CommitOutcomeUnknown`.

    Attributes:
        table: the target table as given.
        rows_sent: how many rows had been sent before the failure.
    """

    def __init__(self, message: str, table: str, rows_sent: int) -> None:
        self.table = table
        self.rows_sent = rows_sent
        super().__init__(message)


class TransferError(MacrostratDatabaseError, RuntimeError):
    """A dump, restore or move failed.

    Attributes:
        step: what was being done (``"dump"``, ``"restore"``, ``"move"``,
            ``"verify"``, ...).
    """

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step


class ToolError(TransferError):
    """A PostgreSQL client program (pg_dump, pg_restore, psql) exited non-zero.

    The message names the program, the step and the exit code, followed by
    the end of the program's standard error.

    Attributes:
        tool: the program's name.
        returncode: its exit code (negative: killed by that signal).
        stderr: the (end of the) program's standard error, decoded.
        step: see `TransferError`.
        state: what the failure left behind (for example "nothing was
            committed to the target"), or None.
    """

    def __init__(
        self,
        tool: str,
        returncode: int,
        stderr: str,
        *,
        step: str | None = None,
        state: str | None = None,
    ) -> None:
        self.tool = tool
        self.returncode = returncode
        self.stderr = stderr
        self.state = state
        what = f" during {step}" if step else ""
        detail = stderr.strip() or "(no output on stderr)"
        tail = f"\n{state}" if state else ""
        super().__init__(
            f"{tool} failed{what} with exit code {returncode}:\n{detail}{tail}",
            step=step,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the structured attributes."""
        return (
            _rebuild_tool_error,
            (
                type(self),
                self.tool,
                self.returncode,
                self.stderr,
                self.step,
                self.state,
            ),
        )


def _rebuild_tool_error(
    cls: type[ToolError],
    tool: str,
    returncode: int,
    stderr: str,
    step: str | None,
    state: str | None,
) -> ToolError:
    return cls(tool, returncode, stderr, step=step, state=state)


class ToolNotFoundError(TransferError, FileNotFoundError):
    """No PostgreSQL client programs could be found or run."""


class ToolVersionError(TransferError):
    """The available client tools are older than the server (and Docker is unavailable).

    Raised before anything runs: pg_dump refuses to dump a server newer than
    itself.

    Attributes:
        tool_version: the major version of the local client tools (or None).
        server_version: the server's major version.
    """

    def __init__(
        self,
        message: str,
        *,
        tool_version: int | None,
        server_version: int,
        step: str | None = None,
    ) -> None:
        super().__init__(message, step=step)
        self.tool_version = tool_version
        self.server_version = server_version


def add_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc`` (``BaseException.add_note``; Python 3.10 has no notes)."""
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)


def describe_error(exc: BaseException) -> str:
    """The message of ``exc`` for a person, without SQLAlchemy's wrapping.

    A SQLAlchemy ``DBAPIError`` that is not one of ours shows the driver's
    message (no ``[SQL: …]`` block or background link); anything else its
    own text, or its class name when it has none. Used by the command-line
    programs' short error reports.

    Parameters:
        exc: the error.
    """
    if (
        isinstance(exc, _sa.DBAPIError)
        and not isinstance(exc, MacrostratDatabaseError)
        and exc.orig is not None
    ):
        exc = exc.orig
    return str(exc).strip() or type(exc).__name__
