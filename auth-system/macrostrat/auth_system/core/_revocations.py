"""`DatabaseRevocationStore`: revoked token ids in the ``revoked_token`` table.

Every process connected to the same database shares the revocations, so a
token revoked by one (logout, refresh rotation, a spent ORCID state) is
refused by all. Revoking is one ``INSERT ... ON CONFLICT DO UPDATE`` that
keeps the later expiry; checking is one primary-key lookup, comparing
``expires_at`` with the database's ``now()`` (the servers' clocks do not
matter). Expired rows are deleted by `DatabaseRevocationStore.prune`, which a
revoke also runs at most once per ``prune_interval`` per store. The schema
name is quoted with `psycopg.sql`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import psycopg
from psycopg import sql

from macrostrat.database import Database

from ..errors import AuthConfigurationError, RevocationStoreError
from ..legacy._revocations import BaseRevocationStore
from ._transactions import table_transaction

__all__ = ["REVOCATION_TABLE", "DatabaseRevocationStore"]

log = logging.getLogger(__name__)

REVOCATION_TABLE = "revoked_token"
"""The name of the revoked-token table in the auth schema."""

_EXPIRES = "to_timestamp(%(expires_at)s::double precision)"

# An expiry already past needs no row; a second revocation keeps the later one.
_REVOKE = f"""
INSERT INTO {{table}} AS t (jti, expires_at)
SELECT %(jti)s, {_EXPIRES}
WHERE {_EXPIRES} > now()
ON CONFLICT (jti) DO UPDATE SET
    expires_at = greatest(t.expires_at, excluded.expires_at)
RETURNING (xmax = 0) AS first
"""

_IS_REVOKED = """
SELECT EXISTS (SELECT FROM {table} WHERE jti = %(jti)s AND expires_at > now())
"""

_PRUNE = "DELETE FROM {table} WHERE expires_at <= now()"


class _AuthTables(Protocol):
    """What the store needs of an `AuthDatabase`: its database and schema."""

    @property
    def database(self) -> Database:
        """The database holding the auth tables."""
        ...

    @property
    def schema(self) -> str:
        """The schema holding the auth tables."""
        ...


class DatabaseRevocationStore(BaseRevocationStore):
    """Revoked token ids in the ``revoked_token`` table of an `AuthDatabase`.

    Shared by every process using that database. Usually obtained as
    ``AuthDatabase.revocation_store``; `JWTBackend` uses it automatically
    when an auth database is configured (`connect_engine`) and the backend
    was given no store of its own.

    Parameters:
        database: the auth database whose schema holds the table (created
            by `create_auth_schema`).
        prune_interval: seconds between the expired-row prunes that revokes
            run (the first revoke prunes); 0 prunes on every revoke.

    Raises:
        AuthConfigurationError: ``prune_interval`` is negative or not a number.
    """

    blocking: ClassVar[bool] = True

    def __init__(self, database: _AuthTables, *, prune_interval: float = 3600) -> None:
        if (
            isinstance(prune_interval, bool)
            or not isinstance(prune_interval, (int, float))
            or not math.isfinite(prune_interval)
            or prune_interval < 0
        ):
            raise AuthConfigurationError(
                "prune_interval must be a finite number of seconds, 0 or more."
            )
        self.auth_database = database
        self.prune_interval = float(prune_interval)
        table = sql.Identifier(database.schema, REVOCATION_TABLE)
        self._revoke = sql.SQL(_REVOKE).format(table=table)
        self._is_revoked = sql.SQL(_IS_REVOKED).format(table=table)
        self._prune = sql.SQL(_PRUNE).format(table=table)
        self._lock = threading.Lock()
        self._last_prune: float | None = None

    def __repr__(self) -> str:
        return f"<DatabaseRevocationStore {self.auth_database!r}>"

    def _transaction(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A psycopg connection in one transaction, committed on success.

        Database errors become `RevocationStoreError` (the driver's primary
        message only; the error is the ``__cause__``).
        """
        return table_transaction(
            self.auth_database.database,
            RevocationStoreError,
            f"Revoked-token table {self.auth_database.schema}.{REVOCATION_TABLE}",
        )

    def revoke(self, jti: str, expires_at: int) -> bool:
        """See `BaseRevocationStore.revoke`; may prune expired rows afterwards.

        Of two processes revoking the same id at once, exactly one is told it
        was first (the row's insert); the other waits for it and is not.

        Raises:
            RevocationStoreError: the table could not be used.
        """
        with self._transaction() as raw:
            row = raw.execute(
                self._revoke, {"jti": str(jti), "expires_at": int(expires_at)}
            ).fetchone()
        # No row: the expiry had passed, nothing to keep (nor to refresh).
        first = bool(row is not None and row[0])
        if self._prune_due():
            try:
                removed = self.prune()
            except RevocationStoreError:  # housekeeping: the revocation stands
                log.warning("Could not prune the revoked-token table", exc_info=True)
            else:
                if removed:
                    log.debug("Pruned %d expired token revocations", removed)
        return first

    def is_revoked(self, jti: str) -> bool:
        """See `BaseRevocationStore.is_revoked`.

        Raises:
            RevocationStoreError: the table could not be used.
        """
        with self._transaction() as raw:
            row = raw.execute(self._is_revoked, {"jti": str(jti)}).fetchone()
        return bool(row is not None and row[0])

    def prune(self) -> int:
        """Delete the rows whose ``expires_at`` has passed; return how many.

        Raises:
            RevocationStoreError: the table could not be used.
        """
        with self._transaction() as raw:
            return max(raw.execute(self._prune).rowcount, 0)

    def _prune_due(self) -> bool:
        """Whether a revoke should prune now (and note that it does)."""
        now = time.monotonic()
        with self._lock:
            last = self._last_prune
            if last is not None and now - last < self.prune_interval:
                return False
            self._last_prune = now
            return True
