"""Upgrade the PostgreSQL cluster in a Docker volume to a newer major version.

The steps, each checked before the next, so that the original data is never at
risk:

1. Refuse while a running container mounts the volume; read its major version.
2. Start the old image on the volume and the new image on an emptied
   ``<volume>_new``, both only on a private internal network (no published
   port). The old server gets a temporary ``hba_file`` trusting that network;
   the volume's own ``pg_hba.conf`` is not touched.
3. From the new container (newer client tools): roles and other globals
   (``pg_dumpall --globals-only``, passwords kept), then every database
   (``pg_dump -Fc | pg_restore --create --exit-on-error``).
4. Verify, per database, the same user tables with the same exact row counts
   and the same extensions. Carry over the ``ALTER SYSTEM`` settings the new
   major knows (restarting the new server to apply them) and warn about every
   setting and ``pg_hba.conf`` rule not carried over; check that password
   logins over TCP work. Both servers then shut down cleanly.
5. Copy the old volume into a new backup volume (never an existing one) and
   check the copy; only then empty the original volume and copy the new
   cluster in, and check that copy; remove ``<volume>_new``.

The new cluster authenticates TCP connections with ``scram-sha-256``, or
``md5`` when login roles still have MD5 password hashes (from old clusters;
``scram-sha-256`` would lock them out), never ``trust``; its superuser keeps
the old password.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..cluster.docker import _ensure_image
from ..errors import DatabaseUpgradeError
from ._images import default_version_images, helper_image
from .containers import (
    ClusterContainer,
    copy_volume,
    ensure_empty_docker_volume,
    new_backup_volume_name,
    require_volume_unused,
    start_cluster_container,
    volume_exists,
    warn_stopped_volume_users,
)
from .describe import (
    check_database_cluster_version,
    list_databases,
    list_extensions,
    table_row_counts,
)
from .server_config import (
    carry_over_auto_conf,
    choose_auth_method,
    md5_login_roles,
    unmigrated_hba_rules,
    verify_password_logins,
)

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = [
    "UpgradeResult",
    "default_version_images",
    "helper_image",
    "upgrade_database_cluster",
]

log = logging.getLogger(__name__)

_HBA_DIR = "/tmp"
_HBA_NAME = "macrostrat-upgrade-hba.conf"
# Only for the old server during the upgrade: it is reachable solely from the
# private network, and the file lives in the container, not in the volume.
_SOURCE_HBA = b"local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all samenet trust\n"


@dataclass
class UpgradeResult:
    """What `upgrade_database_cluster` did.

    Attributes:
        volume: the upgraded volume.
        from_version / to_version: the major versions.
        backup_volume: the volume holding a verified copy of the old cluster
            (None when nothing was done).
        databases: the databases migrated.
        row_counts: ``{database: {(schema, table): rows}}``, equal on both sides.
        superuser_password: set only when the old superuser had no password and
            one was generated for the new cluster (TCP logins need one).
        auth_method: the new cluster's host authentication method (None when
            nothing was done).
    """

    volume: str
    from_version: int | None
    to_version: int
    backup_volume: str | None = None
    databases: list[str] = field(default_factory=list)
    row_counts: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)
    superuser_password: str | None = field(default=None, repr=False)
    auth_method: str | None = None


def _drop_bootstrap_role(globals_sql: str, user: str) -> str:
    """Remove ``CREATE ROLE <user>;`` (it exists already in the new cluster)."""
    quoted = '"' + user.replace('"', '""') + '"'
    names = {quoted}
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", user):
        names.add(user)
    lines = [
        line
        for line in globals_sql.splitlines()
        if line not in {f"CREATE ROLE {name};" for name in names}
    ]
    return "\n".join(lines) + "\n"


def _has_password(source: ClusterContainer) -> bool:
    rows = source.query(
        "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = current_user"
    )
    return bool(rows) and rows[0][0] == "t"


def _migrate(
    source: ClusterContainer,
    target: ClusterContainer,
    databases: list[str],
) -> dict[str, dict[tuple[str, str], int]]:
    """Copy globals and ``databases`` from ``source`` to ``target``, then verify."""
    globals_sql, _ = target.run(["pg_dumpall", "-h", source.name, "--globals-only"])
    target.put_file(
        "/tmp", "globals.sql", _drop_bootstrap_role(globals_sql, target.user).encode()
    )
    target.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-f",
            "/tmp/globals.sql",
        ]
    )
    counts: dict[str, dict[tuple[str, str], int]] = {}
    for database in databases:
        log.info("Copying database %s", database)
        # Names travel as positional arguments, never inside the script text.
        if database == "postgres":  # exists already: restore into it
            restore = 'pg_restore --exit-on-error -d "$2"'
        else:  # CREATE DATABASE with the dumped owner, encoding and settings
            restore = "pg_restore --exit-on-error --create -d postgres"
        script = f'set -o pipefail; pg_dump -h "$1" -Fc -d "$2" | {restore}'
        target.run(["bash", "-c", script, "upgrade", source.name, database])
        before = table_row_counts(source, database)
        after = table_row_counts(target, database)
        if before != after:
            missing = sorted(set(before) - set(after))
            differ = sorted(
                f"{s}.{t}: {before[(s, t)]} → {after.get((s, t))}"
                for s, t in before
                if (s, t) in after and before[(s, t)] != after[(s, t)]
            )
            extra = sorted(set(after) - set(before))
            raise DatabaseUpgradeError(
                f"database {database} differs after the restore: missing tables "
                f"{missing}, different row counts {differ}, unexpected tables {extra}"
            )
        extensions_before = list_extensions(source, database)
        extensions_after = list_extensions(target, database)
        if extensions_before != extensions_after:
            raise DatabaseUpgradeError(
                f"database {database}: extensions {sorted(extensions_before)} became "
                f"{sorted(extensions_after)}"
            )
        counts[database] = after
        log.info("Database %s: %d user tables, row counts equal", database, len(after))
    return counts


def upgrade_database_cluster(
    client: DockerClient,
    cluster_volume_name: str,
    target_version: int,
    databases: Iterable[str] | None = None,
    version_images: Mapping[int, str] | None = None,
    *,
    user: str = "postgres",
    auth_method: str | None = None,
    password: str | None = None,
) -> UpgradeResult:
    """Upgrade the cluster in volume ``cluster_volume_name`` to ``target_version``.

    See the module docstring for the steps. On any failure before the swap the
    original volume is unchanged (``<volume>_new`` is removed); a failure
    during the swap names the verified backup volume to restore from.

    Parameters:
        client: a Docker client.
        cluster_volume_name: the volume holding the data directory.
        target_version: the PostgreSQL major to upgrade to.
        databases: the databases to migrate (default: every database one can
            connect to, ``postgres`` included). Listing only some is refused
            when others exist, since they would be lost.
        version_images: PostgreSQL major → image (default
            `default_version_images`); both versions must be present.
        user: the superuser of the old cluster (it connects over the local
            socket, so no password is needed).
        auth_method: host authentication of the new cluster: ``scram-sha-256``
            or ``md5``; ``trust`` is refused. Default: ``scram-sha-256``, or
            ``md5`` (with a warning naming them) when login roles have MD5
            password hashes. Asking for ``scram-sha-256`` while such roles
            exist is refused, naming them.
        password: the new superuser's password when the old one has none
            (default: generated and returned in `UpgradeResult`).

    Raises:
        DatabaseUpgradeError: refused (volume in use, no upgrade path, unknown
            or omitted database) or failed (with the step and the tool's error).
        ValueError: ``auth_method`` is ``trust`` or unknown.
    """
    if auth_method not in (None, "scram-sha-256", "md5"):
        raise ValueError(
            f"auth_method must be 'scram-sha-256' or 'md5', not {auth_method!r}: an "
            "upgraded cluster never trusts connections without a password"
        )
    images = dict(version_images or default_version_images)
    volume = cluster_volume_name
    if not volume_exists(client, volume):
        raise DatabaseUpgradeError(f"volume {volume} does not exist")
    require_volume_unused(client, volume)
    warn_stopped_volume_users(client, volume)
    if target_version not in images:
        raise DatabaseUpgradeError(
            f"Target PostgreSQL version {target_version} is not supported "
            f"(known: {sorted(images)})"
        )
    current = check_database_cluster_version(
        client, volume, image=helper_image(client, images)
    )
    if current is None:
        raise DatabaseUpgradeError(f"volume {volume} holds no PostgreSQL cluster")
    log.info(
        "Upgrading database cluster in %s from %s to %s",
        volume,
        current,
        target_version,
    )
    if current == target_version:
        log.info("Volume %s is already at version %s", volume, current)
        return UpgradeResult(volume, current, target_version)
    if current > target_version:
        raise DatabaseUpgradeError(
            f"volume {volume} holds PostgreSQL {current}; cannot downgrade to {target_version}"
        )
    if current not in images:
        raise DatabaseUpgradeError(
            f"No upgrade path available: no image for PostgreSQL {current} "
            f"(known: {sorted(images)})"
        )
    for version in (current, target_version):
        _ensure_image(client, images[version], build=False, context=None)
    new_volume = f"{volume}_new"
    ensure_empty_docker_volume(client, new_volume)
    suffix = secrets.token_hex(4)
    network = client.networks.create(f"{volume}-upgrade-{suffix}", internal=True)
    new_password = password or secrets.token_urlsafe(24)
    source: ClusterContainer | None = None
    target: ClusterContainer | None = None
    result = UpgradeResult(volume, current, target_version)
    try:
        source = start_cluster_container(
            client,
            images[current],
            volume,
            name=f"{volume}-upgrade-source-{suffix}",
            network=network.name,
            user=user,
            command=[
                "postgres",
                "-c",
                "listen_addresses=*",
                "-c",
                f"hba_file={_HBA_DIR}/{_HBA_NAME}",
            ],
            files={f"{_HBA_DIR}/{_HBA_NAME}": _SOURCE_HBA},
        )
        present = list_databases(source)
        wanted = present if databases is None else list(databases)
        unknown = sorted(set(wanted) - set(present))
        if unknown:
            raise DatabaseUpgradeError(
                f"database(s) {', '.join(unknown)} do not exist in volume {volume}"
            )
        omitted = sorted(set(present) - set(wanted))
        if omitted:
            raise DatabaseUpgradeError(
                f"database(s) {', '.join(omitted)} exist in volume {volume} but were "
                "not listed; they would be lost. List them too, or pass databases=None"
            )
        had_password = _has_password(source)
        md5_roles = md5_login_roles(source)
        method = choose_auth_method(auth_method, md5_roles)
        target = start_cluster_container(
            client,
            images[target_version],
            new_volume,
            name=f"{volume}-upgrade-target-{suffix}",
            network=network.name,
            user=user,
            environment={
                "POSTGRES_USER": user,
                "POSTGRES_PASSWORD": new_password,
                "POSTGRES_DB": "postgres",
                "POSTGRES_HOST_AUTH_METHOD": method,
            },
        )
        result.row_counts = _migrate(source, target, wanted)
        result.databases = wanted
        carry_over_auto_conf(source, target)
        unmigrated_hba_rules(source, target)
        verify_password_logins(
            target, method, user, None if had_password else new_password, md5_roles
        )
        result.auth_method = method
        if not had_password:
            log.warning(
                "the old superuser %s had no password; the upgraded cluster's has one "
                "(see UpgradeResult.superuser_password)",
                user,
            )
            result.superuser_password = new_password
        for cluster in (source, target):
            cluster.stop()
        source = target = None
    except BaseException:
        for leftover in (source, target):
            if leftover is not None:
                with contextlib.suppress(Exception):
                    leftover.container.remove(force=True)
        with contextlib.suppress(Exception):
            client.volumes.get(new_volume).remove(force=True)
        raise
    finally:
        # Never hide the original exception behind a failed clean-up.
        with contextlib.suppress(Exception):
            network.remove()

    # The new cluster is verified and shut down; now swap, keeping a backup.
    require_volume_unused(client, volume)
    image = images[target_version]
    backup = new_backup_volume_name(client, volume)
    client.volumes.create(backup)
    try:
        copy_volume(client, image, volume, backup)
    except Exception as exc:
        with contextlib.suppress(Exception):
            client.volumes.get(backup).remove(force=True)
        raise DatabaseUpgradeError(
            f"backing up volume {volume} failed, so it was not replaced (it is "
            f"unchanged; the verified new cluster is in {new_volume}): {exc}"
        ) from exc
    result.backup_volume = backup
    log.info("Backed up volume %s to %s", volume, backup)
    try:
        copy_volume(client, image, new_volume, volume)
    except Exception as exc:
        raise DatabaseUpgradeError(
            f"replacing the contents of {volume} failed; the old cluster is intact "
            f"in volume {backup} and the new one in {new_volume}: {exc}"
        ) from exc
    if check_database_cluster_version(client, volume, image=image) != target_version:
        raise DatabaseUpgradeError(
            f"volume {volume} does not hold PostgreSQL {target_version} after the "
            f"copy; the old cluster is intact in volume {backup}"
        )
    client.volumes.get(new_volume).remove(force=True)
    log.info(
        "Volume %s now holds PostgreSQL %s (backup: %s)", volume, target_version, backup
    )
    return result
