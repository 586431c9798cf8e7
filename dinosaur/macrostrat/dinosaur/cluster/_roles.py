"""What the servers of a throwaway topology are, whichever backend runs them.

A topology is a primary, its hot standbys and optionally PgBouncer in front.
`local_topology` runs them from this machine's binaries, `docker_topology` in
containers; both yield an object that is a `TopologyLike`, made of a
`ServerLike` primary, `StandbyLike` standbys and a `PoolerLike` PgBouncer, so
tests and fixtures can take either. This module also holds the small rules
both backends share: the pool modes, option checks, replication slot names,
PgBouncer's version string and libpq's multi-host URLs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import quote

import psycopg

from ..errors import ClusterError

__all__ = [
    "POOL_MODES",
    "PoolMode",
    "PoolerLike",
    "ServerLike",
    "StandbyLike",
    "TopologyLike",
    "TopologyURLs",
    "check_topology_options",
    "format_multi_host_url",
    "parse_pgbouncer_version",
    "slot_name",
]

PoolMode = Literal["session", "transaction"]
"""PgBouncer's pooling modes a topology offers (``statement`` breaks transactions)."""

POOL_MODES: tuple[PoolMode, ...] = ("session", "transaction")


class ServerLike(Protocol):
    """A running PostgreSQL server of a topology (`LocalCluster`, `DockerServer`)."""

    @property
    def user(self) -> str:
        """The superuser's name."""
        ...

    @property
    def password(self) -> str:
        """The superuser's password."""
        ...

    @property
    def database(self) -> str:
        """The database URLs name unless told otherwise."""
        ...

    @property
    def port(self) -> int | None:
        """The TCP port this machine reaches the server on."""
        ...

    @property
    def running(self) -> bool:
        """Whether the server is up."""
        ...

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """A URL for the superuser, password included."""
        ...

    def connect(
        self, database: str | None = None, **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """A psycopg connection as the superuser (autocommit by default)."""
        ...

    def stop(self) -> None:
        """Stop the server."""
        ...


class StandbyLike(ServerLike, Protocol):
    """A hot standby streaming from the topology's primary."""

    @property
    def slot(self) -> str:
        """Its physical replication slot on the primary."""
        ...

    def wait_for_replay(self, timeout: float | None = None) -> None:
        """Block until it has replayed the primary's current WAL position."""
        ...

    def promote(self, timeout: float = 60.0) -> None:
        """Promote it to a primary (``pg_promote``) and wait until it is one."""
        ...


class PoolerLike(Protocol):
    """PgBouncer in front of the topology's primary."""

    @property
    def pool_mode(self) -> PoolMode:
        """``"session"`` or ``"transaction"``."""
        ...

    @property
    def port(self) -> int | None:
        """The TCP port this machine reaches PgBouncer on."""
        ...

    @property
    def version(self) -> tuple[int, int]:
        """PgBouncer's (major, minor) version."""
        ...

    @property
    def supports_prepared_statements(self) -> bool:
        """Whether protocol-level prepared statements survive its pooling."""
        ...

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """A URL for the primary's superuser through PgBouncer."""
        ...

    def admin(self, command: str) -> list[tuple[Any, ...]]:
        """Run a console command (``SHOW POOLS``...) on its admin database."""
        ...

    def stop(self) -> None:
        """Stop PgBouncer."""
        ...


class TopologyLike(Protocol):
    """What `local_topology` and `docker_topology` yield."""

    @property
    def primary(self) -> ServerLike:
        """The primary server."""
        ...

    @property
    def standbys(self) -> Sequence[StandbyLike]:
        """Its hot standbys, in order (the first is the synchronous one, if any)."""
        ...

    @property
    def pgbouncer(self) -> PoolerLike | None:
        """PgBouncer in front of the primary, or None."""
        ...

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """Where applications connect: through PgBouncer if there is one."""
        ...

    def multi_host_url(
        self,
        *,
        driver: str | None = None,
        database: str | None = None,
        target_session_attrs: str = "read-write",
    ) -> str:
        """A libpq multi-host URL listing the primary, then every standby."""
        ...

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Block until every standby has replayed what the primary wrote so far."""
        ...


class TopologyURLs:
    """`TopologyLike`'s URLs and replay wait, from ``primary``, ``standbys``, ``pgbouncer``.

    Both topologies (``Topology`` and ``DockerTopology``, dataclasses with
    those three attributes) inherit these; each says where this machine
    reaches its servers (`server_address`).
    """

    primary: Any
    standbys: Sequence[Any]
    pgbouncer: Any

    def server_address(self, server: Any) -> tuple[str, int]:
        """``(host, port)`` where this machine reaches ``server``."""
        raise NotImplementedError

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """Where applications connect: through PgBouncer if there is one, else the primary."""
        if self.pgbouncer is not None:
            return str(self.pgbouncer.url(driver=driver, database=database))
        return str(self.primary.url(driver=driver, database=database))

    def multi_host_url(
        self,
        *,
        driver: str | None = None,
        database: str | None = None,
        target_session_attrs: str = "read-write",
    ) -> str:
        """A libpq multi-host URL listing the primary, then every standby.

        With ``target_session_attrs=read-write`` libpq connects to whichever
        of them accepts writes: the primary, or a standby once promoted.
        """
        primary = self.primary
        return format_multi_host_url(
            [self.server_address(s) for s in (primary, *self.standbys)],
            user=primary.user,
            password=primary.password,
            database=database or primary.database,
            driver=driver,
            target_session_attrs=target_session_attrs,
        )

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Block until every standby has replayed what the primary wrote so far."""
        for standby in self.standbys:
            standby.wait_for_replay(timeout)


def check_topology_options(standbys: int, pgbouncer: str | None) -> None:
    """Refuse a standby count or pool mode no topology can have.

    Raises:
        ValueError: ``standbys`` is negative or not an integer, or
            ``pgbouncer`` is neither None nor one of `POOL_MODES`.
    """
    if isinstance(standbys, bool) or not isinstance(standbys, int) or standbys < 0:
        raise ValueError(f"standbys must be an integer >= 0, not {standbys!r}")
    if pgbouncer is not None and pgbouncer not in POOL_MODES:
        raise ValueError(
            f"pgbouncer must be None, 'session' or 'transaction', not {pgbouncer!r}"
        )


def slot_name(name: str) -> str:
    """A replication slot name made from ``name`` (lower case, letters, digits, ``_``).

    Raises:
        ClusterError: nothing usable is left of ``name``.
    """
    slot = re.sub(r"[^a-z0-9_]", "_", name.lower())[:60]
    if not slot:
        raise ClusterError(f"cannot make a replication slot name from {name!r}")
    return slot


def parse_pgbouncer_version(text: str) -> tuple[int, int]:
    """PgBouncer's (major, minor) version from ``pgbouncer --version``'s output.

    Raises:
        ClusterError: ``text`` does not start with ``PgBouncer <major>.<minor>``.
    """
    words = text.split()
    parts = words[1].split(".") if len(words) > 1 else []
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise ClusterError(f"cannot read PgBouncer's version from {text!r}") from None


def format_multi_host_url(
    hosts: Iterable[tuple[str, int]],
    *,
    user: str,
    password: str,
    database: str,
    driver: str | None = None,
    target_session_attrs: str = "read-write",
) -> str:
    """A libpq multi-host URL: ``postgresql://user:pw@h1:p1,h2:p2/db?target_session_attrs=...``.

    With ``target_session_attrs=read-write`` libpq connects to the first host
    that accepts writes.

    Parameters:
        hosts: (host, port) pairs in the order libpq tries them.
        user, password, database: the credentials and database (quoted here).
        driver: a SQLAlchemy driver name for the scheme (``postgresql+<driver>``).
        target_session_attrs: libpq's ``target_session_attrs``.
    """
    listed = ",".join(
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in hosts
    )
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return (
        f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{listed}"
        f"/{quote(database, safe='')}"
        f"?target_session_attrs={quote(target_session_attrs)}"
    )
