"""The streaming-replication steps standbys of both backends take, over SQL.

`LocalStandby` and `DockerStandby` reach their servers differently (a Unix
socket, a published port) but wait for replay, for the synchronous state,
promote and drop their slot the same way: through the ``connect`` of the
`ServerLike` servers given here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ..errors import ClusterError, ClusterStartError
from ._roles import ServerLike

__all__ = [
    "drop_inactive_slot",
    "promote",
    "wait_for_replay",
    "wait_until_synchronous",
]

log = logging.getLogger(__name__)


def wait_for_replay(
    primary: ServerLike,
    standby: ServerLike,
    *,
    name: str,
    timeout: float,
    logs: Callable[[], str | None] | None = None,
) -> None:
    """Block until ``standby`` has replayed ``primary``'s current WAL position.

    Parameters:
        primary: the server the standby streams from.
        standby: the standby.
        name: the standby's name in the error message (its slot).
        timeout: seconds to wait.
        logs: gives the standby's last log lines for the error, if it can.

    Raises:
        ClusterStartError: not caught up within ``timeout`` seconds.
    """
    with primary.connect() as conn:
        # A transaction that writes WAL (a transactional logical message)
        # and commits with a local flush flushes everything written before
        # it, even with synchronous_commit off; the standby is sent only
        # flushed WAL, so the flush position is the target.
        conn.execute("SET synchronous_commit = local")
        conn.execute("SELECT pg_logical_emit_message(true, 'macrostrat', 'sync')")
        row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    replayed: Any = None
    while time.monotonic() < deadline:
        with standby.connect("postgres") as conn:
            row = conn.execute(
                "SELECT pg_last_wal_replay_lsn()::text, "
                "pg_last_wal_replay_lsn() >= %s::pg_lsn",
                (target,),
            ).fetchone()
        assert row is not None
        replayed, done = row
        if done:
            return
        time.sleep(0.02)
    raise ClusterStartError(
        f"standby {name} did not replay up to {target} within the timeout "
        f"(it is at {replayed})",
        logs() if logs is not None else None,
    )


def wait_until_synchronous(
    primary: ServerLike, application_name: str | None, *, timeout: float
) -> None:
    """Block until ``primary`` reports the standby ``application_name`` as synchronous.

    Raises:
        ClusterStartError: not so within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with primary.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_stat_replication "
                "WHERE application_name = %s AND sync_state = 'sync'",
                (application_name,),
            ).fetchone()
        if row is not None:
            return
        time.sleep(0.02)
    raise ClusterStartError(
        f"standby {application_name} did not become synchronous in time"
    )


def promote(standby: ServerLike, *, name: str, timeout: float) -> None:
    """Promote ``standby`` (``pg_promote``, waiting up to ``timeout`` seconds).

    Raises:
        ClusterError: not promoted in time.
    """
    with standby.connect("postgres") as conn:
        row = conn.execute(
            "SELECT pg_promote(true, %s)", (max(1, int(timeout)),)
        ).fetchone()
    if row is None or not row[0]:
        raise ClusterError(f"standby {name} was not promoted in {timeout:g} s")


def drop_inactive_slot(primary: ServerLike, slot: str, *, timeout: float = 5.0) -> None:
    """Drop ``slot`` on ``primary`` once its walsender has gone (a stopped standby's).

    Logs, never raises: a slot still active after ``timeout`` seconds is left
    (with a warning), and a primary going away too is fine.
    """
    deadline = time.monotonic() + timeout
    try:
        with primary.connect("postgres") as conn:
            while True:
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                    (slot,),
                ).fetchone()
                if row is None:
                    return
                if not row[0]:  # its walsender has gone with the standby
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    return
                if time.monotonic() > deadline:
                    log.warning("replication slot %s stayed active", slot)
                    return
                time.sleep(0.05)
    except psycopg.Error as exc:  # the primary may be going away too
        log.debug("could not drop replication slot %s: %s", slot, exc)
