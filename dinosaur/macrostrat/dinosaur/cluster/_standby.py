"""Hot standbys of a local cluster: a base backup, streaming replication, a slot.

`LocalStandby` is a `LocalCluster` whose data directory is made by
``pg_basebackup --write-recovery-conf`` from a running primary instead of
``initdb``. It streams from the primary through a physical replication slot of
its own (created by the base backup, dropped when the standby stops), serves
read-only queries while it replays (``hot_standby``), and can be promoted.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import psycopg

from ..errors import ClusterError, ClusterStartError
from .local import LocalCluster

__all__ = ["REPLICATION_SETTINGS", "LocalStandby"]

log = logging.getLogger(__name__)

REPLICATION_SETTINGS: dict[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    "wal_keep_size": "64MB",
}
"""Settings a primary needs to feed standbys (they override the testing ones)."""


def _slot_name(name: str) -> str:
    slot = re.sub(r"[^a-z0-9_]", "_", name.lower())[:60]
    if not slot:
        raise ClusterError(f"cannot make a replication slot name from {name!r}")
    return slot


class LocalStandby(LocalCluster):
    """A hot standby of ``primary``, run from the same binaries as the same user.

    Parameters:
        primary: the running `LocalCluster` to copy and stream from (it must
            have `REPLICATION_SETTINGS`).
        name: names the standby's replication slot (letters, digits, ``_``).
        in_memory: keep the data directory in ``/dev/shm``.
        start_timeout: seconds to wait for the server and for it to catch up.
    """

    def __init__(
        self,
        primary: LocalCluster,
        *,
        name: str = "standby",
        in_memory: bool = True,
        start_timeout: float = 60.0,
    ) -> None:
        account = primary._account
        super().__init__(
            binaries=primary.binaries,
            user=primary.user,
            password=primary.password,
            database=primary.database,
            in_memory=in_memory,
            run_as=account.pw_name if account is not None else None,
            start_timeout=start_timeout,
        )
        self.primary = primary
        self.slot = _slot_name(name)
        self.settings.update(primary.settings)
        self.settings["hot_standby"] = "on"
        # Promoted, a standby with the primary's synchronous_standby_names would
        # wait for a standby of its own at every COMMIT, forever. The base
        # backup copies the primary's ALTER SYSTEM file too: a command-line
        # setting overrides it.
        self.settings["synchronous_standby_names"] = ""

    def _initdb(self) -> None:
        """A base backup of the primary, with the recovery settings and a slot."""
        primary = self.primary
        self._run(
            [
                str(self.binaries.path("pg_basebackup")),
                "--pgdata",
                str(self.data_directory),
                "--host",
                str(primary.socket_directory),
                "--port",
                str(primary.port),
                "--username",
                primary.user,
                "--write-recovery-conf",
                "--wal-method",
                "stream",
                "--slot",
                self.slot,
                "--create-slot",
                "--checkpoint",
                "fast",
                "--no-sync",
            ],
            "pg_basebackup",
        )

    def _post_start(self) -> None:
        """Wait until the standby has replayed what the primary had written."""
        self.wait_for_replay()

    def wait_for_replay(self, timeout: float | None = None) -> None:
        """Block until this standby has replayed the primary's current WAL position.

        Raises:
            ClusterStartError: not caught up within ``timeout`` seconds
                (default: ``start_timeout``).
        """
        with self.primary.connect() as conn:
            # A transaction that writes WAL (a transactional logical message)
            # and commits with a local flush flushes everything written before
            # it, even with synchronous_commit off; the standby is sent only
            # flushed WAL, so the flush position is the target.
            conn.execute("SET synchronous_commit = local")
            conn.execute("SELECT pg_logical_emit_message(true, 'macrostrat', 'sync')")
            row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + (timeout or self.start_timeout)
        replayed: Any = None
        while time.monotonic() < deadline:
            with self.connect("postgres") as conn:
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
            f"standby {self.slot} did not replay up to {target} within the timeout "
            f"(it is at {replayed})"
        )

    def wait_until_synchronous(self, timeout: float | None = None) -> None:
        """Block until the primary reports this standby as its synchronous one.

        Raises:
            ClusterStartError: not so within ``timeout`` seconds.
        """
        deadline = time.monotonic() + (timeout or self.start_timeout)
        name = self.settings.get("cluster_name")
        while time.monotonic() < deadline:
            with self.primary.connect() as conn:
                row = conn.execute(
                    "SELECT 1 FROM pg_stat_replication "
                    "WHERE application_name = %s AND sync_state = 'sync'",
                    (name,),
                ).fetchone()
            if row is not None:
                return
            time.sleep(0.02)
        raise ClusterStartError(f"standby {name} did not become synchronous in time")

    def promote(self, timeout: float = 60.0) -> None:
        """Promote this standby to a primary (``pg_promote``) and wait for it."""
        with self.connect("postgres") as conn:
            row = conn.execute(
                "SELECT pg_promote(true, %s)", (max(1, int(timeout)),)
            ).fetchone()
        if row is None or not row[0]:
            raise ClusterError(f"standby {self.slot} was not promoted in {timeout:g} s")
        log.info("standby %s promoted on port %s", self.slot, self.port)

    def stop(self) -> None:
        """Stop the standby, remove its files and drop its slot on the primary."""
        super().stop()
        if not self.primary.running:
            return
        deadline = time.monotonic() + 5.0
        try:
            with self.primary.connect("postgres") as conn:
                while True:
                    row = conn.execute(
                        "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                        (self.slot,),
                    ).fetchone()
                    if row is None:
                        return
                    if not row[0]:  # its walsender has gone with the standby
                        conn.execute(
                            "SELECT pg_drop_replication_slot(%s)", (self.slot,)
                        )
                        return
                    if time.monotonic() > deadline:
                        log.warning("replication slot %s stayed active", self.slot)
                        return
                    time.sleep(0.05)
        except psycopg.Error as exc:  # the primary may be going away too
            log.debug("could not drop replication slot %s: %s", self.slot, exc)
