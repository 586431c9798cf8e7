"""Helpers with the upstream ``macrostrat.dinosaur`` names and signatures."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

import psycopg
from sqlalchemy import URL, Connection, Engine, text
from sqlalchemy.pool import NullPool

from .diff import (
    AutoMigration,
    DatabaseInitializer,
    conninfo,
    create_migration,
    format_plan,
    throwaway_database,
)
from .errors import MigrationError

__all__ = [
    "create_schema_clone",
    "db_migration",
    "dump_schema",
    "dump_schema_containerized",
    "has_column",
    "has_table",
    "strip_psql_meta_commands",
    "temp_database",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _sa_connection(connectable: Any) -> Iterator[Connection]:
    if isinstance(connectable, Connection):
        yield connectable
        return
    if isinstance(connectable, (str, URL)):
        from macrostrat.database import create_engine

        engine = create_engine(connectable, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
        return
    engine = connectable if isinstance(connectable, Engine) else connectable.engine
    with engine.connect() as conn:
        yield conn


_RELATION_KINDS = ("r", "p", "v", "m", "f")


def has_table(engine: Any, table: str) -> bool:
    """True when ``table`` exists (a table, partitioned table, view or foreign table).

    Parameters:
        engine: an ``Engine``, a ``Connection`` (its transaction sees its own
            uncommitted DDL), a `Database`, or a URL (a connection is opened
            and closed for the check).
        table: ``name``, ``schema.name`` or quoted ``"schema"."name"``;
            unqualified names follow the ``search_path``.
    """
    with _sa_connection(engine) as conn:
        row = conn.execute(
            text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:t)"),
            {"t": table},
        ).first()
    return row is not None and row[0] in _RELATION_KINDS


def has_column(engine: Any, table: str, column: str) -> bool:
    """True when ``table`` (see `has_table`) has a column named ``column``."""
    with _sa_connection(engine) as conn:
        row = conn.execute(
            text(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(:t) "
                "AND attname = :c AND attnum > 0 AND NOT attisdropped"
            ),
            {"t": table, "c": column},
        ).first()
    return row is not None


def _libpq_env(url: Any) -> dict[str, str]:
    """The current environment plus PGPASSWORD when the URL carries a password."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def dump_schema(engine: Any, image_name: str | None = None) -> str:
    """The schema of a database as ``pg_dump --schema-only`` text.

    The password (if any) goes through ``PGPASSWORD``, never the command line;
    the rest of the environment is kept.

    Parameters:
        engine: an ``Engine``, ``Connection``, `Database` or URL.
        image_name: run ``pg_dump`` in this Docker image (host network) instead
            of the local binary.

    Raises:
        MigrationError: ``pg_dump`` failed; its stderr is in the message.
    """
    from macrostrat.database import get_database_url

    url = get_database_url(engine)
    args = ["pg_dump", "--schema-only", "--no-owner", "--no-privileges"]
    args += ["-h", url.host or "localhost", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    args.append(url.database or "postgres")
    env = _libpq_env(url)
    if image_name is not None:
        return _dump_in_image(image_name, args, url.password)
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MigrationError(
            f"pg_dump failed with exit code {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout


def _dump_in_image(image_name: str, args: list[str], password: str | None) -> str:
    """Run ``args`` (a pg_dump command) in a throwaway container on the host network."""
    try:
        import docker
        from docker.errors import ContainerError
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise MigrationError(
            "dump_schema(image_name=...) needs Docker support: "
            "pip install 'macrostrat.dinosaur[docker]'"
        ) from exc
    client = docker.from_env()
    try:
        output: bytes = client.containers.run(
            image_name,
            args,
            network_mode="host",
            remove=True,
            environment={"PGPASSWORD": password} if password else {},
            stdout=True,
            stderr=False,
        )
    except ContainerError as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if exc.stderr else ""
        raise MigrationError(
            f"pg_dump failed with exit code {exc.exit_status}: {stderr.strip()}"
        ) from exc
    finally:
        client.close()
    return output.decode("utf-8")


def dump_schema_containerized(
    container: Any, dbname: str, user: str = "postgres"
) -> str:
    """The schema of database ``dbname`` dumped by ``pg_dump`` inside a running container.

    Parameters:
        container: a docker-py ``Container`` running PostgreSQL.
        dbname: the database to dump.
        user: the role to connect as.

    Raises:
        MigrationError: ``pg_dump`` exited with an error; its stderr is in the message.
    """
    code, output = container.exec_run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "-U",
            user,
            dbname,
        ],
        demux=True,
    )
    stdout, stderr = output if isinstance(output, tuple) else (output, b"")
    if code != 0:
        message = (stderr or b"").decode("utf-8", "replace").strip()
        raise MigrationError(f"pg_dump failed with exit code {code}: {message}")
    return (stdout or b"").decode("utf-8")


_META = re.compile(r"^\\[A-Za-z]")


def strip_psql_meta_commands(script: str) -> str:
    """Remove psql meta-command lines (``\\restrict``, ``\\unrestrict``, ``\\connect``...).

    Modern ``pg_dump`` writes ``\\restrict <key>`` / ``\\unrestrict <key>``
    around plain dumps; the server does not understand them.
    """
    return "\n".join(line for line in script.splitlines() if not _META.match(line))


@contextlib.contextmanager
def create_schema_clone(
    engine: Any,
    db_url: Any = None,
    image_name: str | None = None,
    *,
    cluster: str | None = None,
    replace_existing: bool = False,
) -> Iterator[Engine]:
    """Copy the schema (no data) of a database into a throwaway one; yield its engine.

    The schema is dumped with ``pg_dump --schema-only`` (psql meta-command
    lines such as ``\\restrict`` removed) and loaded into a new database,
    which is always dropped afterwards.  A ``db_url`` naming an existing
    database is refused (it would be replaced, then dropped) unless
    ``replace_existing=True``.

    Parameters:
        engine: the database to copy (``Engine``, ``Connection``, `Database`, URL).
        db_url: the clone's URL (default: a random name on the same server).
        image_name: run ``pg_dump`` in this Docker image.
        cluster: load the clone into a throwaway cluster instead of the live
            server: ``"local"`` (server binaries on this machine), ``"docker"``
            or ``"auto"`` (see `database_cluster`); the live server is then
            only read.  ``db_url`` is ignored.
        replace_existing: allow ``db_url`` to name an existing database,
            which is then emptied, used and dropped.

    Raises:
        DatabaseExistsError: ``db_url`` names an existing database and
            ``replace_existing`` is False.
    """
    from macrostrat.database import get_database_url

    schema = strip_psql_meta_commands(dump_schema(engine, image_name=image_name))
    if cluster is not None:
        from .cluster import check_backend, database_cluster

        with database_cluster(
            backend=check_backend(cluster),
            optimize_for_testing=True,
            database="dinosaur_clone",
        ) as cluster_db:
            url = cluster_db.engine.url
            cluster_db.cleanup()
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                conn.execute(schema)
            from macrostrat.database import create_engine

            clone = create_engine(url)
            try:
                yield clone
            finally:
                clone.dispose()
        return
    if db_url is None:
        db_url = get_database_url(engine).set(
            database=f"dinosaur_clone_{secrets.token_hex(6)}"
        )
    with throwaway_database(
        db_url, replace=replace_existing, option="replace_existing"
    ) as clone:
        with psycopg.connect(conninfo(clone), autocommit=True) as conn:
            conn.execute(schema)
        yield clone


@contextlib.contextmanager
def _target_db(
    url: Any,
    initializer: DatabaseInitializer,
    quiet: bool = False,
    redirect: TextIO | None = None,
) -> Iterator[Engine]:
    """Upstream's private helper: a database at ``url`` built by ``initializer``.

    Creates the database with `macrostrat.database.temporary_database` (so an
    existing one is used and kept), runs ``initializer`` on a `Database` over
    it and yields its engine; on exit the database it created is dropped,
    ending any session left on it. The initializer's stdout is discarded
    with ``quiet``, sent to ``redirect`` if given, and left alone otherwise
    (upstream sent it to stderr). `macrostrat.dinosaur.diff.target_database`
    is the public way (it picks a fresh name on the live server).

    Parameters:
        url: the database to build.
        initializer: builds the schema.
        quiet: discard the initializer's stdout.
        redirect: where the initializer's stdout goes.
    """
    from macrostrat.database import Database, temporary_database

    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(temporary_database(url, force_drop=True))
        sink = stack.enter_context(open(os.devnull, "w")) if quiet else redirect
        target = Database(engine)
        try:
            with (
                contextlib.redirect_stdout(sink)
                if sink is not None
                else contextlib.nullcontext()
            ):
                initializer(target)
        finally:
            target.cleanup()
        yield engine


def temp_database(*args: Any, **kwargs: Any) -> Any:
    """Deprecated alias of `macrostrat.database.temporary_database`."""
    warnings.warn(
        "macrostrat.dinosaur.temp_database is deprecated; use "
        "macrostrat.database.temporary_database",
        DeprecationWarning,
        stacklevel=2,
    )
    from macrostrat.database import temporary_database

    return temporary_database(*args, **kwargs)


def db_migration(
    database: Any,
    initializer: DatabaseInitializer,
    safe: bool = True,
    apply: bool = False,
    hide_view_changes: bool = False,
    **kwargs: Any,
) -> AutoMigration:
    """Show (or, with ``apply``, apply) the migration to ``initializer``'s schema.

    Without ``apply`` the plan, with hazards as comments, goes to stdout.  With
    ``apply``, unsafe statements are refused (`UnsafeMigrationError`) unless
    ``safe=False``, which allows every hazard; errors are raised, never
    swallowed, and the result must converge.

    Parameters:
        database: the live database.
        initializer: builds the ideal schema.
        safe: refuse unsafe statements when applying.
        apply: apply instead of printing.
        hide_view_changes: leave out drops and creations of views and functions
            (printing only).
        **kwargs: passed to `create_migration`.
    """
    from .hazards import Hazard

    migration = create_migration(database, initializer, **kwargs)
    if not apply:
        plan = migration.plan
        if hide_view_changes:
            keep = set(migration.changes_omitting_views())
            plan = [p for p in plan if p.sql in keep]
        print("===MIGRATION BELOW THIS LINE===", file=sys.stderr)
        sys.stdout.write(format_plan(plan))
        return migration
    allow = () if safe else tuple(Hazard)
    migration.apply(allow_hazards=allow, check_convergence=True)
    return migration
