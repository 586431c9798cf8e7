"""What the ``dinosaur`` command line checks before it creates anything.

`resolve_target` turns ``--target``, ``--schema-file``, ``--initializer`` and
``--target-cluster`` into a `TargetSource` (a usage error for a bad
combination, a module that cannot be imported, ...). `preflight` then connects
to the databases involved and checks what the command will need (the role's
``CREATEDB`` privilege, the template, a valid ``lock_timeout``), so that a
mistake is reported before a throwaway database or cluster exists. The
errors are reported by `macrostrat.dinosaur._cli_report`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from ._cli_report import describe_error, expected_errors
from .diff import DatabaseInitializer, conninfo, target_database
from .errors import (
    DatabaseUnavailableError,
    MigrationError,
    MissingPrivilegeError,
)

__all__ = [
    "ClusterBackend",
    "TargetSource",
    "build_target",
    "preflight",
    "resolve_target",
]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
"""Seconds to wait for a server to answer the preflight connection."""


class ClusterBackend(str, Enum):
    """The backends ``--dry-run-cluster`` and ``--target-cluster`` accept.

    ``live`` means a throwaway database on the live server itself.
    """

    local = "local"
    docker = "docker"
    auto = "auto"
    live = "live"


# -- where the ideal schema comes from ----------------------------------------


@dataclass(frozen=True)
class TargetSource:
    """Where the ideal schema comes from, as the options chose it.

    Attributes:
        url: ``--target``: a database that already has it.
        initializer: what builds it (from ``--schema-file``,
            ``--initializer`` or the application's default).
        cluster: ``--target-cluster``: build it in a throwaway cluster of
            this backend instead of the live server.
        template: the template of the throwaway database on the live server.
    """

    url: str | None = None
    initializer: DatabaseInitializer | None = None
    cluster: str | None = None
    template: str | None = None

    @property
    def on_live_server(self) -> bool:
        """Whether a throwaway database is created on the live server."""
        return self.url is None and self.cluster is None


def _initializer_module(module: str) -> Any:
    """Import ``module`` as ``python -m`` would, the current directory first."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module or module.startswith(missing + "."):
            raise typer.BadParameter(
                f"no module named {module!r} (searched the current directory and "
                "sys.path)",
                param_hint="--initializer",
            ) from exc
        raise MigrationError(
            f"--initializer: importing {module!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise MigrationError(
            f"--initializer: importing {module!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def load_initializer(spec: str) -> DatabaseInitializer:
    """The function ``module:function`` names, or a usage error saying what is wrong.

    The current directory is searched first (as with ``python -m``), so a
    project's own module works from a console script.

    Raises:
        typer.BadParameter: not ``module:function``, no such module, no such
            function, or not callable.
        MigrationError: the module raised while it was imported.
    """
    module, _, name = spec.partition(":")
    if not module or not name:
        raise typer.BadParameter(
            f"{spec!r} is not module:function", param_hint="--initializer"
        )
    found: Any = _initializer_module(module)
    for part in name.split("."):
        if not hasattr(found, part):
            raise typer.BadParameter(
                f"module {module!r} has no attribute {name!r}",
                param_hint="--initializer",
            )
        found = getattr(found, part)
    if not callable(found):
        raise typer.BadParameter(
            f"{spec} is a {type(found).__name__}, not a function",
            param_hint="--initializer",
        )
    initializer: DatabaseInitializer = found
    return initializer


def files_initializer(files: Sequence[Path]) -> DatabaseInitializer:
    """An initializer running SQL files with ``run_sql`` (errors name file and line)."""

    def init(db: Any) -> None:
        for path in files:
            db.run_sql(Path(path), raise_errors=True)

    return init


def resolve_target(
    *,
    target: str | None,
    files: Sequence[Path] | None,
    initializer: str | None,
    default_initializer: DatabaseInitializer | None,
    cluster: str | None,
    template: str | None,
    default_template: str | None,
) -> TargetSource:
    """Check the options naming the ideal schema; import ``--initializer``.

    Exactly one of ``--target``, ``--schema-file`` and ``--initializer`` may
    be given (the application's default initializer is used when none is);
    ``--target-cluster`` and ``--template`` only apply when the schema is
    built, and not together.

    Raises:
        typer.BadParameter: a bad combination or initializer.
    """
    given = [
        name
        for name, value in (
            ("--target", target),
            ("--schema-file", files),
            ("--initializer", initializer),
        )
        if value
    ]
    if len(given) > 1:
        raise typer.BadParameter(
            f"give only one of {', '.join(given)}", param_hint=given[-1]
        )
    if target:
        if cluster is not None:
            raise typer.BadParameter(
                "--target names a database that has the schema; there is nothing "
                "to build in a cluster",
                param_hint="--target-cluster",
            )
        return TargetSource(url=target)
    if cluster == ClusterBackend.live.value:
        cluster = None  # asked for: a throwaway database on the live server
    elif cluster is not None and template:
        raise typer.BadParameter(
            "--template names a database on the live server; it cannot be used "
            "with --target-cluster",
            param_hint="--template",
        )
    elif cluster is None and not (template or default_template):
        cluster = default_target_cluster()
    if files:
        init: DatabaseInitializer | None = files_initializer(files)
    elif initializer:
        init = load_initializer(initializer)
    else:
        init = default_initializer
    if init is None:
        raise typer.BadParameter(
            "give --target, --schema-file or --initializer", param_hint="--target"
        )
    return TargetSource(
        initializer=init,
        cluster=cluster,
        template=None if cluster is not None else (template or default_template),
    )


def default_target_cluster() -> str | None:
    """Where the ideal schema is built when no option says: ``"local"`` or None.

    A throwaway cluster from this machine's server binaries when there are
    some (then the live database is only read: an application role without
    ``CREATEDB`` can plan), else a throwaway database on the live server.
    """
    from .cluster import find_postgres_binaries
    from .errors import PostgresNotFoundError

    try:
        find_postgres_binaries()
    except PostgresNotFoundError as exc:
        log.info(
            "no local server binaries (%s): building the target on the live server", exc
        )
        return None
    return ClusterBackend.local.value


def _with_context(init: DatabaseInitializer) -> DatabaseInitializer:
    """``init``, with its database and file errors prefixed by what was being done."""
    expected = expected_errors()

    def build(db: Any) -> None:
        try:
            init(db)
        except expected as exc:
            raise MigrationError(
                f"building the ideal schema failed: {describe_error(exc)}"
            ) from exc

    return build


@contextlib.contextmanager
def build_target(live: str, source: TargetSource) -> Iterator[Any]:
    """Yield the URL of a database with the ideal schema; drop what was built.

    ``--target`` is yielded as it is; otherwise the initializer runs in a
    throwaway database on the live server, or in a throwaway cluster.
    """
    if source.url is not None:
        yield source.url
        return
    assert source.initializer is not None
    init = _with_context(source.initializer)
    if source.cluster is None:
        with target_database(live, init, template=source.template) as url:
            yield url
        return
    from macrostrat.database import Database

    from .cluster import check_backend, database_cluster

    with database_cluster(
        backend=check_backend(source.cluster),
        optimize_for_testing=True,
        database="dinosaur_target",
    ) as cluster_db:
        url = cluster_db.engine.url
        cluster_db.cleanup()
        target = Database(url)
        try:
            init(target)
        finally:
            target.cleanup()
        yield url


# -- checks before anything is created ----------------------------------------


def _connect(url: Any, what: str, option: str) -> Any:
    """A psycopg connection (autocommit) to ``url``, or `DatabaseUnavailableError`.

    Parameters:
        url: the database.
        what: how the message names it.
        option: the option that gave it, for a URL that cannot be parsed.
    """
    import psycopg
    from sqlalchemy.exc import ArgumentError

    from macrostrat.database import get_database_url, redact

    try:
        parsed = get_database_url(url)
    except ArgumentError as exc:
        raise typer.BadParameter(
            f"{url!r} is not a database URL", param_hint=option
        ) from exc
    shown = redact(parsed)
    try:
        return psycopg.connect(
            conninfo(parsed), autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to the {what} ({shown}): {str(exc).strip()}"
        ) from exc


def _check_lock_timeout(conn: Any, value: str) -> None:
    """Let the server check ``value`` as a ``lock_timeout`` (nothing is kept)."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (value,))
    except psycopg.errors.InvalidParameterValue as exc:
        hint = exc.diag.message_hint
        raise typer.BadParameter(
            f"{value!r} is not a duration PostgreSQL accepts"
            + (f" ({hint})" if hint else " (e.g. 5s, 500ms, 2min, 0 for none)"),
            param_hint="--lock-timeout",
        ) from exc


def preflight(
    live: str,
    source: TargetSource,
    *,
    command: str,
    lock_timeout: str | None = None,
    clone_on_live: bool = False,
) -> None:
    """Check, before anything is created, what ``command`` will need.

    Connects to the live database (and ``--target``), lets the server check
    ``lock_timeout``, checks that ``--template`` exists, and that the role may
    create the throwaway databases the command would create on the live
    server (the target unless ``--target``/``--target-cluster``, the
    rehearsal clone when ``clone_on_live``).

    Raises:
        DatabaseUnavailableError: a database cannot be reached.
        MissingPrivilegeError: the role lacks ``CREATEDB``; the message names
            the options that avoid creating databases on the live server.
        typer.BadParameter: a bad ``--lock-timeout`` or missing template.
    """
    with _connect(live, "live database", "--database") as conn:
        if lock_timeout is not None:
            _check_lock_timeout(conn, lock_timeout)
        needs: list[str] = []
        if source.on_live_server:
            needs.append(
                "to build the ideal schema (give --target-cluster local, docker or "
                "auto to build it in a throwaway cluster, or --target URL of a "
                "database that has it)"
            )
        if clone_on_live:
            needs.append(
                "to rehearse on a schema-only clone (give --dry-run-cluster local, "
                "docker or auto, or --no-dry-run)"
            )
        if needs:
            role, can_create = conn.execute(
                "SELECT current_user, rolsuper OR rolcreatedb FROM pg_roles "
                "WHERE rolname = current_user"
            ).fetchone()
            if not can_create:
                raise MissingPrivilegeError(
                    f"role {role!r} cannot create databases (it lacks CREATEDB), "
                    f"and `{command}` creates a throwaway database on the live "
                    "server " + " and ".join(needs)
                )
        if source.on_live_server and source.template:
            row = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (source.template,)
            ).fetchone()
            if row is None:
                raise typer.BadParameter(
                    f"template database {source.template!r} does not exist on the "
                    "live server",
                    param_hint="--template",
                )
    if source.url is not None:
        with _connect(source.url, "target database", "--target"):
            pass
