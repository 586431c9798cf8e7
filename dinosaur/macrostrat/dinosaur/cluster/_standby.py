"""Hot standbys of a local cluster: a base backup, streaming replication, a slot.

`LocalStandby` is a `LocalCluster` whose data directory is made by
``pg_basebackup --write-recovery-conf`` from a running primary instead of
``initdb``. It streams from the primary through a physical replication slot of
its own (created by the base backup, dropped when the standby stops), serves
read-only queries while it replays (``hot_standby``), and can be promoted.
"""

from __future__ import annotations

import logging

from . import _replication
from ._roles import slot_name as _slot_name
from ._settings import REPLICATION_SETTINGS
from .local import LocalCluster

__all__ = ["REPLICATION_SETTINGS", "LocalStandby"]

log = logging.getLogger(__name__)


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
        _replication.wait_for_replay(
            self.primary,
            self,
            name=self.slot,
            timeout=timeout or self.start_timeout,
        )

    def wait_until_synchronous(self, timeout: float | None = None) -> None:
        """Block until the primary reports this standby as its synchronous one.

        Raises:
            ClusterStartError: not so within ``timeout`` seconds.
        """
        _replication.wait_until_synchronous(
            self.primary,
            self.settings.get("cluster_name"),
            timeout=timeout or self.start_timeout,
        )

    def promote(self, timeout: float = 60.0) -> None:
        """Promote this standby to a primary (``pg_promote``) and wait for it."""
        _replication.promote(self, name=self.slot, timeout=timeout)
        log.info("standby %s promoted on port %s", self.slot, self.port)

    def stop(self) -> None:
        """Stop the standby, remove its files and drop its slot on the primary."""
        super().stop()
        if not self.primary.running:
            return
        _replication.drop_inactive_slot(self.primary, self.slot)
