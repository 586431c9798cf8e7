"""Errors raised by macrostrat.database.

Every error derives from `MacrostratDatabaseError`.  Where a builtin fits, the
error also derives from it, so ``except LookupError`` or ``except ValueError``
keeps working::

    MacrostratDatabaseError
    ├── SQLSyntaxError (ValueError)        a SQL source could not be split
    ├── StatementError                     a statement failed while running;
    │                                      also derives from the SQLAlchemy error
    │                                      class of the failure when there is one
    ├── ModelNotFoundError (LookupError)   no ORM model for a table
    ├── ModelCacheError                    the model cache cannot be used safely
    ├── DatabaseExistsError                create_database on an existing name
    ├── DatabaseNotFoundError (LookupError) drop_database on a missing name
    └── InvalidOptionError (TypeError)     an unknown or invalid keyword option

The driver's or SQLAlchemy's own exception is always kept as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "DatabaseExistsError",
    "DatabaseNotFoundError",
    "InvalidOptionError",
    "MacrostratDatabaseError",
    "ModelCacheError",
    "ModelNotFoundError",
    "StatementError",
]


class MacrostratDatabaseError(Exception):
    """Base class of every error raised by macrostrat.database."""


class StatementError(MacrostratDatabaseError):
    """A statement from a SQL source failed.

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


class ModelNotFoundError(MacrostratDatabaseError, LookupError):
    """No ORM model exists (or could be reflected) for a table."""


class ModelCacheError(MacrostratDatabaseError):
    """The model cache file cannot be used safely (for example: writable by others)."""


class DatabaseExistsError(MacrostratDatabaseError):
    """A database of that name already exists."""


class DatabaseNotFoundError(MacrostratDatabaseError, LookupError):
    """A database of that name does not exist."""


class InvalidOptionError(MacrostratDatabaseError, TypeError):
    """An unknown keyword option, or an option given an invalid value."""
