"""Errors raised by macrostrat.dinosaur.

Every error derives from `DinosaurError`; where a builtin fits, the error also
derives from it so that existing ``except`` clauses keep working::

    DinosaurError
    └── ClusterError (RuntimeError)
        ├── PostgresNotFoundError (FileNotFoundError)
        ├── ClusterStartError
        ├── BackendUnavailableError
        └── DatabaseUpgradeError
    └── MigrationError
        ├── UnsafeMigrationError
        ├── MigrationStatementError
        ├── ConvergenceError
        ├── SchemaMigrationError
        ├── DatabaseUnavailableError (ConnectionError)
        └── MissingPrivilegeError (PermissionError)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendUnavailableError",
    "ClusterError",
    "ClusterStartError",
    "ConvergenceError",
    "DatabaseUnavailableError",
    "DatabaseUpgradeError",
    "DinosaurError",
    "MigrationError",
    "MigrationStatementError",
    "MissingPrivilegeError",
    "PostgresNotFoundError",
    "SchemaMigrationError",
    "UnsafeMigrationError",
]


class DinosaurError(Exception):
    """Base class of every error raised by macrostrat.dinosaur."""


class ClusterError(DinosaurError, RuntimeError):
    """A throwaway PostgreSQL cluster could not be created, started or stopped."""


class PostgresNotFoundError(ClusterError, FileNotFoundError):
    """No PostgreSQL server binaries (``initdb``, ``postgres``) were found."""


class ClusterStartError(ClusterError):
    """The server did not start or did not accept connections.

    Attributes:
        log_tail: the last lines of the server log, when there is one.
    """

    def __init__(self, message: str, log_tail: str | None = None) -> None:
        self.log_tail = log_tail
        if log_tail:
            message = f"{message}\n--- last lines of the server log ---\n{log_tail}"
        super().__init__(message)


class BackendUnavailableError(ClusterError):
    """The requested cluster backend (Docker or local binaries) cannot be used here."""


class DatabaseUpgradeError(ClusterError):
    """A cluster's major-version upgrade was refused or failed.

    Raised before anything is swapped, the original volume is untouched; the
    message says which volume holds what when it is raised later.
    """


class MigrationError(DinosaurError):
    """A schema migration could not be planned or applied."""


class UnsafeMigrationError(MigrationError):
    """A plan has unsafe hazards the caller did not allow; nothing was applied.

    Attributes:
        refused: ``(statement, hazards)`` pairs: each refused `PlannedStatement`
            with the unsafe hazards that were not allowed.
        hazards: every hazard that would have to be allowed, sorted by name.
    """

    # The pairs are typed loosely so that the error root imports nothing of the
    # package (a statement is a `hazards.PlannedStatement`, a hazard a `Hazard`).
    def __init__(self, refused: list[tuple[Any, tuple[Any, ...]]]) -> None:
        self.refused = refused
        self.hazards = sorted({h.value for _, hs in refused for h in hs})
        lines = [
            f"refusing {len(refused)} unsafe statement(s); allow these hazards "
            f"by name to apply them: {', '.join(self.hazards)}"
        ]
        for statement, hazards in refused:
            text = " ".join(statement.sql.split())
            lines.append(f"  [{', '.join(h.value for h in hazards)}] {text}")
        super().__init__("\n".join(lines))


class MigrationStatementError(MigrationError):
    """A migration statement failed; its transaction was rolled back.

    Attributes:
        statement: the SQL text of the failing statement.
        index: its position in the plan (0-based).
    """

    def __init__(self, statement: str, index: int, cause: BaseException) -> None:
        self.statement = statement
        self.index = index
        text = " ".join(statement.split())
        super().__init__(
            f"migration statement {index + 1} failed and nothing was kept: "
            f"{text}\n{type(cause).__name__}: {str(cause).strip()}"
        )


class ConvergenceError(MigrationError):
    """After applying, the database still differs from the target.

    Attributes:
        remaining: the statements a new diff still produces.
    """

    def __init__(self, remaining: list[str]) -> None:
        self.remaining = remaining
        body = "\n".join("  " + " ".join(s.split()) for s in remaining)
        super().__init__(
            f"the migration did not converge; {len(remaining)} statement(s) "
            f"are still needed:\n{body}"
        )


class SchemaMigrationError(MigrationError):
    """A hand-written `SchemaMigration` failed or cannot be ordered."""


class DatabaseUnavailableError(MigrationError, ConnectionError):
    """A database a migration needs cannot be reached.

    The server does not answer, refuses the login, or has no such database;
    the message names the database (without its password) and gives the
    server's reason. The driver's error is the ``__cause__``.
    """


class MissingPrivilegeError(MigrationError, PermissionError):
    """The role lacks a privilege the migration needs; nothing was created.

    For example ``CREATEDB``, to build the ideal schema in a throwaway
    database on the live server; the message names the options that avoid it.
    """
