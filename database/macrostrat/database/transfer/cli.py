"""The ``dump``, ``restore`` and ``move`` commands (Typer), for application CLIs to mount.

``app.add_typer(create_cli(database_url=url), name="db")`` gives ``db dump``,
``db restore`` and ``db move``.  The database comes from the command's
``--database``/``-d``, else the ``database_url`` given to `create_cli` (a
string or a function returning one), else ``$MACROSTRAT_DATABASE_URL``.
``move``'s target is its argument, else the variable named by ``--to-env``,
else ``$MACROSTRAT_TARGET_DATABASE_URL`` (both keep a password out of ``ps``).
Mistakes are usage errors (exit code 2) found before anything runs: a dump
file that does not exist, an output directory that does not exist, a URL that
cannot be parsed, a custom-format dump to a terminal. Failures (an unreachable
server, a tool's error) print ``Error:`` and the reason (with the tool's
stderr) and exit with code 1; ``--verbose`` (before the command, or an
application's ``--verbose``) adds the traceback. Needs the ``cli`` extra (``pip install 'macrostrat.database[cli]'``), which
also makes the same commands a program: ``macrostrat-db-transfer`` (or
``python -m macrostrat.database.transfer``), see `main`.

Longer than 400 lines because each command's options, usage checks and
messages are defined next to each other (Typer declares them in the
signatures).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import IO, Annotated, Any

try:
    import typer
except ImportError as exc:
    raise ImportError(
        "macrostrat.database.transfer.cli needs Typer: install the `cli` extra "
        "(pip install 'macrostrat.database[cli]')"
    ) from exc

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from macrostrat.utils.cli import VERBOSE_KEY, is_verbose

from ..errors import MacrostratDatabaseError, describe_error
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

_FAILURES: tuple[type[BaseException], ...] = (
    MacrostratDatabaseError,
    SQLAlchemyError,
    psycopg.Error,
    OSError,
)
"""Errors reported as a short message; any other exception is a bug and shows its traceback."""


def _database_option(bound: bool) -> Any:
    """The ``--database`` option; its help says where the URL comes from without it.

    Parameters:
        bound: the application gave a URL (``$MACROSTRAT_DATABASE_URL`` is
            then not read, so the help does not mention it).
    """
    where = "(default: the application's database)" if bound else f"[${DATABASE_ENV}]"
    return typer.Option(
        None, "--database", "-d", help=f"Database URL {where}", show_default=False
    )


def _checked_url(url: str, param_hint: str) -> str:
    """``url``, or a usage error when it cannot be parsed (the text is not echoed)."""
    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise typer.BadParameter(
            f"not a database URL ({exc})", param_hint=param_hint
        ) from exc
    return url


def _same_file(a: IO[Any] | None, b: IO[Any] | None) -> bool:
    """Whether two streams write to the same file, pipe or terminal."""
    try:
        first = os.fstat(a.fileno())  # type: ignore[union-attr]
        second = os.fstat(b.fileno())  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _check_output(dumpfile: str, plain: bool) -> bool:
    """Check where ``dump`` writes before anything runs; return whether to stay quiet.

    A file must be in an existing directory and not be one; standard output
    must not be a terminal for a custom-format (binary) dump. When standard
    error writes where standard output does (a terminal, ``&> file``), no
    progress is reported: it would land in the dump.

    Raises:
        typer.BadParameter: one of the above.
    """
    if dumpfile != "-":
        path = Path(dumpfile)
        if path.is_dir():
            raise typer.BadParameter(
                f"{dumpfile} is a directory; give a file name", param_hint="DUMPFILE"
            )
        if not path.parent.is_dir():
            raise typer.BadParameter(
                f"directory {path.parent} does not exist", param_hint="DUMPFILE"
            )
        return False
    stdout = sys.stdout
    if not plain and stdout is not None and stdout.isatty():
        raise typer.BadParameter(
            "refusing to write a custom-format (binary) dump to the terminal: "
            "give an output file, redirect standard output, or use --plain",
            param_hint="DUMPFILE",
        )
    return _same_file(stdout, sys.stderr)


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
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", help="Show the traceback of an error.")
]
ArgsOpt = Annotated[
    list[str] | None,
    typer.Option("--arg", help="Extra argument for the tool (repeatable)"),
]


def create_cli(database_url: str | Callable[[], str] | None = None) -> typer.Typer:
    """A Typer app with ``dump``, ``restore`` and ``move``, and a ``--verbose`` option.

    Usage errors exit with status 2 before a server is asked; failures print
    ``Error:`` and the reason and exit with status 1 (see the module
    documentation).

    Parameters:
        database_url: the default database (or a function returning it);
            otherwise ``--database`` or ``$MACROSTRAT_DATABASE_URL`` (which
            is then the only case the ``--database`` help mentions it).
    """
    app = typer.Typer(
        help="Dump, restore and move PostgreSQL databases and tables.",
        no_args_is_help=True,
        add_completion=False,
    )
    database_opt = _database_option(database_url is not None)

    @app.callback(help="Dump, restore and move PostgreSQL databases and tables.")
    def _group(ctx: typer.Context, verbose: VerboseOpt = False) -> None:
        if verbose:
            ctx.meta[VERBOSE_KEY] = True

    def url_for(value: str | None) -> str:
        return _checked_url(database_url_option(value, database_url), "--database")

    def fail(ctx: typer.Context, exc: BaseException) -> typer.Exit:
        if is_verbose(ctx):
            traceback.print_exception(
                type(exc), exc, exc.__traceback__, file=sys.stderr
            )
        typer.echo(f"Error: {describe_error(exc)}", err=True)
        return typer.Exit(1)

    @app.command("dump")
    def dump_cmd(
        ctx: typer.Context,
        dumpfile: Annotated[
            str, typer.Argument(help="Output file, or - for standard output")
        ] = "-",
        database: str | None = database_opt,
        plain: Annotated[
            bool, typer.Option("--plain", help="Plain SQL instead of custom format")
        ] = False,
        arg: ArgsOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Dump the database (custom format unless --plain) to a file or stdout.

        A custom-format dump is refused when standard output is a terminal.
        """
        url = url_for(database)
        shares_stream = _check_output(dumpfile, plain)
        try:
            n = pg_dump_to_file_sync(
                url,
                None if dumpfile == "-" else Path(dumpfile),
                custom_format=not plain,
                args=arg or [],
                quiet=quiet or shares_stream,
            )
        except _FAILURES as exc:
            raise fail(ctx, exc) from exc
        if dumpfile != "-" and not quiet:
            typer.echo(f"dumped {n} bytes to {dumpfile}", err=True)

    @app.command("restore")
    def restore_cmd(
        ctx: typer.Context,
        dumpfile: Annotated[Path, typer.Argument(help="Dump file or directory")],
        database: str | None = database_opt,
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
        except _FAILURES as exc:
            raise fail(ctx, exc) from exc
        if not quiet:
            typer.echo(f"restored {dumpfile}", err=True)

    @app.command("move")
    def move_cmd(
        ctx: typer.Context,
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
        database: str | None = database_opt,
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
        target = _checked_url(target_url(target, to_env), "TARGET")
        if not table and not schema:
            raise typer.BadParameter("give --table or --schema", param_hint="--table")
        try:
            counts = move_tables_sync(
                url, target, tables=table or [], schemas=schema or [], quiet=quiet
            )
        except _FAILURES as exc:
            raise fail(ctx, exc) from exc
        for name, n in counts.items():
            typer.echo(f"{name}\t{n}")

    return app


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROGRAM} {installed_version('macrostrat.database')}")
        raise typer.Exit()


def main(args: Sequence[str] | None = None, prog_name: str = PROGRAM) -> None:
    """Run ``macrostrat-db-transfer``: `create_cli`'s commands, ``--version`` and ``--verbose``.

    Parameters:
        args: the command line (default: ``sys.argv[1:]``).
        prog_name: the name shown in usage and help texts.
    """
    app = create_cli()

    @app.callback()
    def root(
        ctx: typer.Context,
        verbose: VerboseOpt = False,
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
        if verbose:
            ctx.meta[VERBOSE_KEY] = True

    app(args=None if args is None else list(args), prog_name=prog_name)
