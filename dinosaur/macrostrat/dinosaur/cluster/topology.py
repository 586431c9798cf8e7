"""Throwaway topologies from local binaries: a primary, hot standbys, PgBouncer.

`local_topology` starts a primary `LocalCluster` with replication settings,
``standbys`` hot standbys streaming from it (`LocalStandby`: a base backup,
a replication slot each, caught up before it is yielded) and, when asked, a
real PgBouncer in front of the primary (`LocalPgBouncer`), and yields a
`Topology`. On exit everything is stopped and removed, standbys first. No
Docker is involved; ``synchronous=True`` makes every commit wait until the
first standby has it, so a failover to it loses no acknowledged commit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._pgbouncer import LocalPgBouncer
from ._roles import PoolMode, TopologyURLs
from ._standby import REPLICATION_SETTINGS, LocalStandby
from .local import LocalCluster

__all__ = ["Topology", "local_topology"]


@dataclass
class Topology(TopologyURLs):
    """The servers of a `local_topology`.

    Attributes:
        primary: the primary cluster.
        standbys: its hot standbys, in order.
        pgbouncer: PgBouncer in front of the primary, or None.
    """

    primary: LocalCluster
    standbys: list[LocalStandby] = field(default_factory=list)
    pgbouncer: LocalPgBouncer | None = None

    def server_address(self, server: Any) -> tuple[str, int]:
        """Local servers listen on the loopback address."""
        assert server.port is not None  # set once started
        return ("127.0.0.1", server.port)


@contextlib.contextmanager
def local_topology(
    *,
    standbys: int = 1,
    pgbouncer: PoolMode | None = None,
    synchronous: bool = False,
    optimize_for_testing: bool = True,
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    extensions: tuple[str, ...] = (),
    pool_size: int = 10,
    **cluster_options: Any,
) -> Iterator[Topology]:
    """Start a primary, ``standbys`` hot standbys and optionally PgBouncer; yield them.

    Parameters:
        standbys: how many hot standbys to start (0 for none).
        pgbouncer: ``"transaction"`` or ``"session"`` to put PgBouncer in front
            of the primary in that pooling mode; None for none.
        synchronous: make commits wait until the first standby has flushed
            them (``synchronous_standby_names``, ``synchronous_commit = on``).
        optimize_for_testing: the testing settings (no fsync...), with the
            replication settings a standby needs on top.
        config: more server settings for the primary (standbys copy them), or
            the path of a settings file.
        extensions: extensions to create on the primary (standbys replicate them).
        pool_size: PgBouncer's server connections per database and user.
        **cluster_options: `LocalCluster` options (``user``, ``database``,
            ``version``, ``run_as``, ``start_timeout``...).
    """
    settings: dict[str, Any] = dict(config) if isinstance(config, Mapping) else {}
    if config is not None and not isinstance(config, Mapping):
        cluster_options["config"] = config  # a settings file, included as is
    if standbys:
        settings = {**REPLICATION_SETTINGS, **settings}
        if synchronous:
            settings["synchronous_commit"] = "on"
    primary = LocalCluster(
        optimize_for_testing=optimize_for_testing,
        extensions=extensions,
        **cluster_options,
    )
    # The testing settings turn replication off; these go on top of them.
    primary.settings.update({k: str(v) for k, v in settings.items()})
    with contextlib.ExitStack() as stack:
        stack.enter_context(primary)
        topology = Topology(primary)
        for number in range(1, standbys + 1):
            standby = LocalStandby(primary, name=f"standby_{number}")
            if synchronous:
                # libpq's application_name is what synchronous_standby_names names.
                standby.settings["cluster_name"] = f"standby_{number}"
            topology.standbys.append(stack.enter_context(standby))
        if synchronous and standbys:
            # Only now: with a synchronous standby named before it exists,
            # every commit (extensions, base backups' checkpoints) would wait.
            with primary.connect() as conn:
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby_1'")
                conn.execute("SELECT pg_reload_conf()")
            topology.standbys[0].wait_until_synchronous()
        if pgbouncer is not None:
            topology.pgbouncer = stack.enter_context(
                LocalPgBouncer(primary, pool_mode=pgbouncer, pool_size=pool_size)
            )
        yield topology
