"""The ``dump``, ``restore`` and ``move`` commands (Typer), for application CLIs to mount.

``app.add_typer(create_cli(database_url=url), name="db")`` gives ``db dump``,
``db restore`` and ``db move``.  The database comes from the command's
``--database``/``-d``, else the ``database_url`` given to `create_cli` (a
string or a function returning one), else ``$MACROSTRAT_DATABASE_URL``.
``move``'s target is its argument, else the variable named by ``--to-env``,
else ``$MACROSTRAT_TARGET_DATABASE_URL`` (both keep a password out of ``ps``).
Failures print the error (with the tool's stderr) and exit with code 1.
Needs the ``cli`` extra (``pip install 'macrostrat.database[cli]'``), which
also makes the same commands a program: ``macrostrat-db-transfer`` (or
``python -m macrostrat.database.transfer``), see `main`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated

try:
    import typer
except ImportError as exc:
    raise ImportError(
        "macrostrat.database.transfer.cli needs Typer: install the `cli` extra "
        "(pip install 'macrostrat.database[cli]')"
    ) from exc

from ..errors import MacrostratDatabaseError
from .dump_database import pg_dump_to_file_sync
from .move_tables import move_tables_sync
from .restore_database import pg_restore_from_file_sync

__all__ = [
    "DATABASE_ENV",
    "PROGRAM",
    "TARGET_ENV",
    "create_cli",
    "database_url_option",
    "main",
]

PROGRAM = "macrostrat-db-transfer"
"""The console script installed with the ``cli`` extra."""

DATABASE_ENV = "MACROSTRAT_DATABASE_URL"
TARGET_ENV = "MACROSTRAT_TARGET_DATABASE_URL"
"""Environment variable holding ``move``'s target URL when none is given."""

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", "-d", help=f"Database URL [${DATABASE_ENV}]"),
]


def database_url_option(
    value: str | None, default: str | Callable[[], str] | None = None
) -> str:
    """The database URL a command should use, or a usage error naming the option.

    The ``--database`` value when given, else ``default`` (a string or a
    function returning one, e.g. what an application configured), else
    ``$MACROSTRAT_DATABASE_URL``. Shared by this CLI, dinosaur's and
    app_frame's ``db`` group so they resolve the database the same way.

    Raises:
        typer.BadParameter: none of the three gives a URL.
    """
    if value:
        return value
    if default is not None:
        return default() if callable(default) else default
    env = os.environ.get(DATABASE_ENV)
    if env:
        return env
    raise typer.BadParameter(
        f"give --database or set ${DATABASE_ENV}", param_hint="--database"
    )


def target_url(value: str | None, to_env: str | None) -> str:
    """The target URL of ``move``, or a usage error naming where it was looked for.

    The positional value when given (both it and ``--to-env`` is an error),
    else the variable named by ``--to-env`` (which must be set), else
    ``$MACROSTRAT_TARGET_DATABASE_URL``.  Reading it from the environment
    keeps its password off the command line, where ``ps`` shows it.

    Raises:
        typer.BadParameter: no target, an unset variable, or both forms.
    """
    if value and to_env:
        raise typer.BadParameter(
            "give the target URL or --to-env, not both", param_hint="--to-env"
        )
    if value:
        return value
    if to_env:
        env = os.environ.get(to_env)
        if not env:
            raise typer.BadParameter(
                f"environment variable {to_env} is not set", param_hint="--to-env"
            )
        return env
    env = os.environ.get(TARGET_ENV)
    if env:
        return env
    raise typer.BadParameter(
        f"give the target URL, --to-env VAR or set ${TARGET_ENV}",
        param_hint="TARGET",
    )


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output")]
ArgsOpt = Annotated[
    list[str] | None,
    typer.Option("--arg", help="Extra argument for the tool (repeatable)"),
]


def create_cli(database_url: str | Callable[[], str] | None = None) -> typer.Typer:
    """A Typer app with ``dump``, ``restore`` and ``move``.

    Parameters:
        database_url: the default database (or a function returning it);
            otherwise ``--database`` or ``$MACROSTRAT_DATABASE_URL``.
    """
    app = typer.Typer(
        help="Dump, restore and move PostgreSQL databases and tables.",
        no_args_is_help=True,
        add_completion=False,
    )

    def url_for(value: str | None) -> str:
        return database_url_option(value, database_url)

    def fail(exc: Exception) -> typer.Exit:
        typer.echo(f"Error: {exc}", err=True)
        return typer.Exit(1)

    @app.command("dump")
    def dump_cmd(
        dumpfile: Annotated[
            str, typer.Argument(help="Output file, or - for standard output")
        ] = "-",
        database: DatabaseOpt = None,
        plain: Annotated[
            bool, typer.Option("--plain", help="Plain SQL instead of custom format")
        ] = False,
        arg: ArgsOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Dump the database (custom format unless --plain) to a file or stdout."""
        url = url_for(database)
        try:
            n = pg_dump_to_file_sync(
                url,
                None if dumpfile == "-" else Path(dumpfile),
                custom_format=not plain,
                args=arg or [],
                quiet=quiet,
            )
        except MacrostratDatabaseError as exc:
            raise fail(exc) from exc
        if dumpfile != "-" and not quiet:
            typer.echo(f"dumped {n} bytes to {dumpfile}", err=True)

    @app.command("restore")
    def restore_cmd(
        dumpfile: Annotated[Path, typer.Argument(help="Dump file or directory")],
        database: DatabaseOpt = None,
        create: Annotated[
            bool, typer.Option("--create", help="Create the database if missing")
        ] = False,
        single_transaction: Annotated[
            bool,
            typer.Option(
                "--single-transaction/--no-single-transaction",
                help="All or nothing (default)",
            ),
        ] = True,
        arg: ArgsOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Restore a custom, directory or plain (optionally gzipped) dump."""
        url = url_for(database)
        if not dumpfile.exists():
            raise typer.BadParameter(
                f"{dumpfile} does not exist", param_hint="DUMPFILE"
            )
        try:
            pg_restore_from_file_sync(
                dumpfile,
                url,
                create=create,
                single_transaction=single_transaction,
                args=arg or [],
                quiet=quiet,
            )
        except MacrostratDatabaseError as exc:
            raise fail(exc) from exc
        if not quiet:
            typer.echo(f"restored {dumpfile}", err=True)

    @app.command("move")
    def move_cmd(
        target: Annotated[
            str | None,
            typer.Argument(
                help="URL of the target database (visible in `ps`; prefer "
                f"--to-env or ${TARGET_ENV} when it holds a password)",
                show_default=False,
            ),
        ] = None,
        to_env: Annotated[
            str | None,
            typer.Option(
                "--to-env",
                metavar="VAR",
                help="Read the target URL from environment variable VAR",
            ),
        ] = None,
        database: DatabaseOpt = None,
        table: Annotated[
            list[str] | None,
            typer.Option("--table", "-t", help="schema.table to move (repeatable)"),
        ] = None,
        schema: Annotated[
            list[str] | None,
            typer.Option("--schema", "-n", help="Schema to move (repeatable)"),
        ] = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Move tables or schemas (definitions and data) to another database.

        The target is TARGET, else the variable named by --to-env, else
        $MACROSTRAT_TARGET_DATABASE_URL.
        """
        url = url_for(database)
        target = target_url(target, to_env)
        if not table and not schema:
            raise typer.BadParameter("give --table or --schema", param_hint="--table")
        try:
            counts = move_tables_sync(
                url, target, tables=table or [], schemas=schema or [], quiet=quiet
            )
        except MacrostratDatabaseError as exc:
            raise fail(exc) from exc
        for name, n in counts.items():
            typer.echo(f"{name}\t{n}")

    return app


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROGRAM} {installed_version('macrostrat.database')}")
        raise typer.Exit()


def main(args: Sequence[str] | None = None, prog_name: str = PROGRAM) -> None:
    """Run ``macrostrat-db-transfer``: `create_cli`'s commands and ``--version``.

    Parameters:
        args: the command line (default: ``sys.argv[1:]``).
        prog_name: the name shown in usage and help texts.
    """
    app = create_cli()

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option(
                "--version",
                callback=_show_version,
                is_eager=True,
                help="Show the macrostrat.database version and exit.",
            ),
        ] = False,
    ) -> None:
        """Dump, restore and move PostgreSQL databases and tables."""

    app(args=None if args is None else list(args), prog_name=prog_name)
