"""Errors raised by macrostrat.dinosaur.

Every error derives from `DinosaurError`; where a builtin fits, the error also
derives from it so that existing ``except`` clauses keep working::

    DinosaurError
    └── ClusterError (RuntimeError)
        ├── PostgresNotFoundError (FileNotFoundError)
        ├── ClusterStartError
        └── BackendUnavailableError
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ClusterError",
    "ClusterStartError",
    "DinosaurError",
    "PostgresNotFoundError",
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
