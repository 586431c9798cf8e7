"""Read-only work on hot standbys, with a bound on how stale they may be.

`ReadReplicas` holds an engine per standby and sends read-only work to one
whose replay lag is within ``max_lag`` seconds, taking them in turn; when
none is fresh enough (or none answers) the work runs on the primary. Every
read runs in a ``READ ONLY`` transaction, wherever it lands, so a write in
read-only work fails the same way on a standby and on the primary.

Lag is measured against the primary: zero when the standby has replayed
past the primary's current WAL position (read on the primary, ``pg_current_wal_lsn()``);
otherwise the time since the last transaction it replayed
(``pg_last_xact_replay_timestamp()``), which bounds how far behind it is. Both
need no special privilege. A standby that is not in recovery (promoted) or
does not answer is not used. Each standby is asked at most once per
``check_interval``; a standby chosen from that answer that fails to connect
sends the work to the primary instead.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import URL, Connection, Engine, Result, text

from ._redact import redact
from .engine import create_engine
from .errors import InvalidOptionError

__all__ = ["ReadReplicas"]

log = logging.getLogger(__name__)

_PRIMARY_LSN_SQL = text("SELECT pg_current_wal_lsn()::text")
_LAG_SQL = text(
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_last_wal_replay_lsn() >= CAST(:primary AS pg_lsn) THEN 0.0"
    " ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END"
)

_PROBE_TIMEOUT = 2
"""Seconds a standby's engine waits to connect, unless told otherwise."""


class _Replica:
    def __init__(self, engine: Engine, owned: bool) -> None:
        self.engine = engine
        self.owned = owned  # made here from a URL: disposed here
        self.checked_at = float("-inf")
        self.lag: float | None = None  # None: not usable (down, promoted, unknown)


class ReadReplicas:
    """Route read-only work to standbys fresh enough, else to the primary.

    Parameters:
        primary: the primary's engine (the fall-back).
        replicas: the standbys' URLs (or engines).
        max_lag: the most replay lag, in seconds, a standby may have to be used.
        check_interval: seconds between two lag checks of one standby.
        **engine_kwargs: options for the standbys' engines (`create_engine`).
    """

    def __init__(
        self,
        primary: Engine,
        replicas: Sequence[str | URL | Engine],
        *,
        max_lag: float = 10.0,
        check_interval: float = 1.0,
        **engine_kwargs: Any,
    ) -> None:
        if max_lag < 0 or check_interval < 0:
            raise InvalidOptionError("max_lag and check_interval cannot be negative")
        self.primary = primary
        self.max_lag = max_lag
        self.check_interval = check_interval
        options = dict(engine_kwargs)
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", _PROBE_TIMEOUT)
        options["connect_args"] = connect_args
        self._replicas = [
            _Replica(r, owned=False)
            if isinstance(r, Engine)
            else _Replica(create_engine(r, **options), owned=True)
            for r in replicas
        ]
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @property
    def engines(self) -> list[Engine]:
        """The standbys' engines, in the order given."""
        return [r.engine for r in self._replicas]

    def _primary_lsn(self) -> str | None:
        try:
            with self.primary.connect() as conn:
                lsn = conn.execute(_PRIMARY_LSN_SQL).scalar()
                conn.rollback()
        except Exception as exc:
            log.warning("the primary does not answer: %s", exc)
            return None
        return None if lsn is None else str(lsn)

    def _measure(self, replica: _Replica) -> float | None:
        primary = self._primary_lsn()
        try:
            with replica.engine.connect() as conn:
                row = conn.execute(_LAG_SQL, {"primary": primary or "0/0"}).one()
                conn.rollback()
        except Exception as exc:
            log.warning("standby %s does not answer: %s", redact(replica.engine), exc)
            return None
        in_recovery, lag = row
        if not in_recovery:
            log.warning("%s is not a standby (promoted?)", redact(replica.engine))
            return None
        # Without the primary's position only the time since its last replay
        # is known (the CASE compares with 0/0 and takes that branch).
        return None if lag is None else float(lag)

    def lag(self, replica: int | Engine) -> float | None:
        """A standby's replay lag in seconds (None: down, promoted or unknown).

        Cached for ``check_interval`` seconds.
        """
        if isinstance(replica, Engine):
            chosen = next(r for r in self._replicas if r.engine is replica)
        else:
            chosen = self._replicas[replica]
        now = time.monotonic()
        if now - chosen.checked_at >= self.check_interval:
            chosen.lag = self._measure(chosen)
            chosen.checked_at = time.monotonic()
        return chosen.lag

    def choose(self) -> Engine:
        """The engine for the next read: a fresh standby in turn, else the primary."""
        count = len(self._replicas)
        if count:
            with self._lock:
                start = next(self._turn)
            for offset in range(count):
                replica = self._replicas[(start + offset) % count]
                lag = self.lag(replica.engine)
                if lag is not None and lag <= self.max_lag:
                    return replica.engine
            log.info(
                "no standby within %.3g s of the primary: reading there", self.max_lag
            )
        return self.primary

    def _open(self) -> Connection:
        """A connection to the chosen server; the primary if a standby fails."""
        engine = self.choose()
        try:
            return engine.connect()
        except Exception as exc:
            if engine is self.primary:
                raise
            log.warning("standby %s failed to connect: %s", redact(engine), exc)
            for replica in self._replicas:
                if replica.engine is engine:
                    replica.lag, replica.checked_at = None, time.monotonic()
            return self.primary.connect()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read-only connection on the chosen server; rolled back after.

        Every transaction in the block is ``READ ONLY`` (the connection's
        default, reset when it goes back to the pool), also after a
        ``commit()`` or ``rollback()`` inside it.
        """
        with self._open() as conn:
            raw = conn.connection.driver_connection
            if isinstance(raw, psycopg.Connection):
                # psycopg begins every transaction READ ONLY (client side, no
                # round trip); put back as it was (server default), since an
                # explicit READ WRITE would fail on a standby later.
                previous = raw.read_only
                raw.read_only = True
                try:
                    yield conn
                finally:
                    conn.rollback()
                    raw.read_only = previous
                return
            conn.exec_driver_sql("SET default_transaction_read_only = on")
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.exec_driver_sql("RESET default_transaction_read_only")
                conn.commit()

    def run_query(self, sql: str, params: Any = None) -> Result[Any]:
        """Run one read-only query on the chosen server; the rows are buffered."""
        with self.connect() as conn:
            return conn.execute(text(sql), params or {}).freeze()()

    def dispose(self) -> None:
        """Close the pools of the standby engines made here (not the primary's,
        nor engines passed in)."""
        for replica in self._replicas:
            if replica.owned:
                replica.engine.dispose()
