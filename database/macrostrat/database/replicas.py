"""Read-only work on hot standbys, with a bound on how stale they may be.

`ReadReplicas` holds an engine per standby and sends read-only work to one
whose replay lag is within ``max_lag`` seconds, taking them in turn; when
none is fresh enough (or none answers) the work runs on the primary. Every
read runs in a ``READ ONLY`` transaction, wherever it lands, so a write in
read-only work fails the same way on a standby and on the primary.

Lag is measured on the standby: zero while its WAL receiver is streaming and
it has replayed everything it received; otherwise the time since the last
transaction it replayed (``pg_last_xact_replay_timestamp()``), which bounds
how far behind it can be. A standby that is not in recovery (promoted) is not
used as a replica. Each standby is asked at most once per ``check_interval``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Connection, Engine, Result, text

from ._redact import redact
from .engine import create_engine
from .errors import InvalidOptionError

__all__ = ["ReadReplicas"]

log = logging.getLogger(__name__)

_LAG_SQL = text(
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')"
    " AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0"
    " ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END"
)


class _Replica:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
        self._replicas = [
            _Replica(r if isinstance(r, Engine) else create_engine(r, **engine_kwargs))
            for r in replicas
        ]
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @property
    def engines(self) -> list[Engine]:
        """The standbys' engines, in the order given."""
        return [r.engine for r in self._replicas]

    def _measure(self, replica: _Replica) -> float | None:
        try:
            with replica.engine.connect() as conn:
                row = conn.execute(_LAG_SQL).one()
                conn.rollback()
        except Exception as exc:
            log.warning("standby %s does not answer: %s", redact(replica.engine), exc)
            return None
        in_recovery, lag = row
        if not in_recovery:
            log.warning("%s is not a standby (promoted?)", redact(replica.engine))
            return None
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

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in a ``READ ONLY`` transaction on the chosen server, rolled back after."""
        engine = self.choose()
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                yield conn
            finally:
                conn.rollback()

    def run_query(self, sql: str, params: Any = None) -> Result[Any]:
        """Run one read-only query on the chosen server; the rows are buffered."""
        with self.connect() as conn:
            return conn.execute(text(sql), params or {}).freeze()()

    def dispose(self) -> None:
        """Close the standbys' connection pools (not the primary's)."""
        for replica in self._replicas:
            replica.engine.dispose()
