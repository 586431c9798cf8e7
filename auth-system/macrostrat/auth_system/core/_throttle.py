"""`DatabaseThrottleStore`: login throttle counters in the ``login_throttle`` table.

Every process connected to the same database shares the counters. Counting an
attempt is one ``INSERT ... ON CONFLICT DO UPDATE`` per key whose ``WHERE``
clause skips locked rows, so checking the lock and counting are one atomic
step under the row lock PostgreSQL takes; times are the database's ``now()``,
so the servers' clocks do not matter. The schema name is quoted with
`psycopg.sql`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import psycopg
from psycopg import sql

from macrostrat.database import Database

from ..errors import LoginThrottleStoreError, TooManyLoginAttemptsError
from ..legacy._throttle import (
    ACCOUNT,
    ThrottleAttempt,
    ThrottleKey,
    ThrottlePolicy,
    ThrottleStore,
)
from ._transactions import table_transaction

__all__ = ["THROTTLE_TABLE", "AuthTables", "DatabaseThrottleStore"]

THROTTLE_TABLE = "login_throttle"
"""The name of the throttle table in the auth schema."""

_WINDOW = "make_interval(secs => %(window)s)"
# A counter starts again once `window` has passed since its first failure and
# since the end of its last lock (t is the existing row).
_FRESH = (
    f"(t.first_failure <= now() - {_WINDOW} AND "
    f"(t.locked_until IS NULL OR t.locked_until <= now() - {_WINDOW}))"
)
_COUNT = f"(CASE WHEN {_FRESH} THEN 1 ELSE t.failures + 1 END)"


def _lock(count: str) -> str:
    """SQL for the lock end after ``count`` failures (NULL below the limit)."""
    return (
        f"CASE WHEN {count} >= %(limit)s THEN now() + make_interval(secs => "
        f"least(%(max_delay)s, %(base_delay)s * "
        f"power(CAST(2 AS float8), least({count} - %(limit)s, 60)))) END"
    )


_BEGIN = f"""
INSERT INTO {{table}} AS t (kind, key, failures, first_failure, locked_until)
VALUES (%(kind)s, %(key)s, 1, now(), {_lock("1")})
ON CONFLICT (kind, key) DO UPDATE SET
    failures = {_COUNT},
    first_failure = CASE WHEN {_FRESH} THEN now() ELSE t.first_failure END,
    locked_until = {_lock(_COUNT)}
WHERE t.locked_until IS NULL OR t.locked_until <= now()
RETURNING t.locked_until
"""

_LOCKS = """
SELECT kind, extract(epoch FROM locked_until - now())
FROM {table}
WHERE (kind, key) IN (SELECT * FROM unnest(%(kinds)s::text[], %(keys)s::text[]))
  AND locked_until > now()
"""

_CLEAR = "DELETE FROM {table} WHERE kind = %(kind)s AND key = %(key)s"

_UNCOUNT = """
UPDATE {table} AS t SET
    failures = greatest(t.failures - 1, 0),
    locked_until = CASE WHEN t.locked_until = %(marker)s THEN NULL
                        ELSE t.locked_until END
WHERE kind = %(kind)s AND key = %(key)s
"""

_DROP_EMPTY = """
DELETE FROM {table}
WHERE kind = %(kind)s AND key = %(key)s AND failures = 0
  AND (locked_until IS NULL OR locked_until <= now())
"""

_PRUNE = f"""
DELETE FROM {{table}} AS t
WHERE {_FRESH}
"""


class AuthTables(Protocol):
    """What the store needs of an `AuthDatabase`: its database and schema."""

    @property
    def database(self) -> Database:
        """The database holding the auth tables."""
        ...

    @property
    def schema(self) -> str:
        """The schema holding the auth tables."""
        ...


class DatabaseThrottleStore(ThrottleStore):
    """Login throttle counters in the ``login_throttle`` table of an `AuthDatabase`.

    Shared by every process using that database. Usually obtained as
    ``AuthDatabase.throttle_store``; `LoginThrottle` picks it automatically
    when an auth database is configured (`connect_engine`).

    Parameters:
        database: the auth database whose schema holds the table (created
            by `create_auth_schema`).
    """

    def __init__(self, database: AuthTables) -> None:
        self.auth_database = database
        table = sql.Identifier(database.schema, THROTTLE_TABLE)
        self._begin = sql.SQL(_BEGIN).format(table=table)
        self._locks = sql.SQL(_LOCKS).format(table=table)
        self._clear = sql.SQL(_CLEAR).format(table=table)
        self._uncount = sql.SQL(_UNCOUNT).format(table=table)
        self._drop_empty = sql.SQL(_DROP_EMPTY).format(table=table)
        self._prune = sql.SQL(_PRUNE).format(table=table)

    def __repr__(self) -> str:
        return f"<DatabaseThrottleStore {self.auth_database!r}>"

    def _transaction(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A psycopg connection in one transaction, committed on success.

        Database errors become `LoginThrottleStoreError` (the driver's primary
        message only; the error is the ``__cause__``).
        """
        return table_transaction(
            self.auth_database.database,
            LoginThrottleStoreError,
            f"Login throttle table {self.auth_database.schema}.{THROTTLE_TABLE}",
        )

    def begin(
        self, keys: Sequence[ThrottleKey], policy: ThrottlePolicy
    ) -> ThrottleAttempt:
        """See `ThrottleStore.begin`; one transaction, rolled back if refused."""
        delays = {
            "window": float(policy.window),
            "base_delay": float(policy.base_delay),
            "max_delay": float(policy.max_delay),
        }
        markers: list[object] = []
        with self._transaction() as raw:
            for kind, key in keys:
                params = {"kind": kind, "key": key, "limit": policy.limit_for(kind)}
                row = raw.execute(self._begin, {**params, **delays}).fetchone()
                if row is None:  # the row is locked: refuse, count nothing
                    raise self._refusal(raw, keys)
                markers.append(row[0])
        return ThrottleAttempt(self, tuple(keys), tuple(markers))

    def _refusal(
        self, raw: psycopg.Connection[Any], keys: Sequence[ThrottleKey]
    ) -> TooManyLoginAttemptsError:
        rows = raw.execute(
            self._locks,
            {"kinds": [k for k, _ in keys], "keys": [v for _, v in keys]},
        ).fetchall()
        waits = {kind: float(seconds) for kind, seconds in rows}
        wait = math.ceil(max(waits.values(), default=1.0))
        return TooManyLoginAttemptsError(wait, tuple(waits))

    def succeeded(self, attempt: ThrottleAttempt) -> None:
        """See `ThrottleStore.succeeded`."""
        with self._transaction() as raw:
            for (kind, key), marker in zip(attempt.keys, attempt.markers, strict=True):
                if kind == ACCOUNT:
                    raw.execute(self._clear, {"kind": kind, "key": key})
                else:
                    self._take_back(raw, (kind, key), marker)

    def abandoned(self, attempt: ThrottleAttempt) -> None:
        """See `ThrottleStore.abandoned`; one transaction for every key."""
        with self._transaction() as raw:
            for key, marker in zip(attempt.keys, attempt.markers, strict=True):
                self._take_back(raw, key, marker)

    def _take_back(
        self, raw: psycopg.Connection[Any], key: ThrottleKey, marker: object
    ) -> None:
        """Uncount one attempt of ``key`` (lifting the lock it set); drop an empty row."""
        params = {"kind": key[0], "key": key[1]}
        raw.execute(self._uncount, {**params, "marker": marker})
        raw.execute(self._drop_empty, params)

    def reset(self, kind: str, key: str) -> None:
        """See `ThrottleStore.reset`."""
        with self._transaction() as raw:
            raw.execute(self._clear, {"kind": kind, "key": key})

    def prune(self, policy: ThrottlePolicy) -> int:
        """See `ThrottleStore.prune`."""
        with self._transaction() as raw:
            cursor = raw.execute(self._prune, {"window": float(policy.window)})
            return max(cursor.rowcount, 0)
