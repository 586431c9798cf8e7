"""The `db` command group: migrations, dump/restore, SQL and tables (the `db` extra).

It needs `macrostrat.app_frame[db]` (macrostrat.database and
macrostrat.dinosaur). Those packages are imported only when a `db` command
runs or its help is shown; without them the commands say what to install.
`db migrate` is the Typer app of `macrostrat.dinosaur.cli` (`plan`, `apply`,
`dump-schema`), and `db dump`, `db restore` and `db move` are the commands of
`macrostrat.database.transfer.cli`, mounted as they are. `db sql` and
`db tables` are defined here.

In dry-run mode the commands that only read the database
(`READ_ONLY_COMMANDS`) run; every other one is refused with a
`DatabaseCommandError` when it would run (its `--help` still works).

About 470 lines, mostly the command definitions and their help; each command's
work is in `macrostrat.dinosaur` or `macrostrat.database.transfer`.
"""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from .errors import ApplicationError, DatabaseCommandError, MissingExtraError
from .utils.commands import CommandBase, ControlCommandGroup
from .utils.env import is_dry_run

if TYPE_CHECKING:
    # The context Typer's Click classes take (Typer vendors Click as `typer._click`).
    from typer._click import Context as ClickContext

__all__ = [
    "DATABASE_ENV",
    "READ_ONLY_COMMANDS",
    "DatabaseURL",
    "add_db_commands",
    "db_commands",
]

DATABASE_ENV = "MACROSTRAT_DATABASE_URL"
"""The variable giving the database URL when neither `--database` nor the app does."""

DatabaseURL = str | Callable[[], str] | None
"""A database URL, or a function returning it (called only when a command runs)."""

_EXTRA_HINT = "Install the db extra: pip install 'macrostrat.app_frame[db]'"
_TRANSFER_COMMANDS = ("dump", "restore", "move")


def _checked_url_function(func: Callable[[], str]) -> Callable[[], str]:
    """Wrap a `database_url` function so that its failures are clear errors.

    A `KeyError` (e.g. from `os.environ["MYAPP_DATABASE_URL"]`) becomes
    "environment variable MYAPP_DATABASE_URL is not set"; any other
    exception a `DatabaseCommandError` naming it. The exception is kept as the
    `__cause__`.
    """

    @functools.wraps(func)
    def database_url() -> str:
        try:
            return func()
        except ApplicationError:
            raise
        except KeyError as exc:
            name = exc.args[0] if exc.args else "?"
            raise DatabaseCommandError(
                f"Cannot get the database URL: environment variable {name} is not set",
                details="Set it, or give the command --database URL.",
            ) from exc
        except Exception as exc:
            raise DatabaseCommandError(
                "Cannot get the database URL: the app's database_url function "
                f"raised {type(exc).__name__}: {exc}",
                details="Give the command --database URL instead.",
            ) from exc

    return database_url


READ_ONLY_COMMANDS = frozenset(
    {"migrate plan", "migrate dump-schema", "dump", "tables"}
)
"""The `db` commands (paths below `db`) that run in dry-run mode: they only read the
database (`migrate plan` builds the ideal schema in a throwaway database and
drops it). Every other one, `sql` and commands an app adds included, is
refused."""


def _refuse_dry_run(ctx: ClickContext) -> None:
    """Raise a `DatabaseCommandError` in dry-run mode: the command could change the database."""
    if is_dry_run():
        raise DatabaseCommandError(
            f"`{ctx.command_path}` cannot run in dry-run mode: it would change "
            "the database for real",
            details="Run it without --dry-run (and without DRY_RUN=1). In dry-run "
            "mode only commands that read the database run: "
            + ", ".join(f"db {name}" for name in sorted(READ_ONLY_COMMANDS))
            + ".",
        )


def _refused_in_dry_run(command: Any) -> Any:
    """A copy of the Click command `command` that refuses to run in dry-run mode.

    The check runs when the command is invoked, after its arguments were
    parsed, so `--help` (handled while parsing) still works.
    """
    if getattr(command, "_refuses_dry_run", False):
        return command
    invoke = command.invoke

    def guarded_invoke(ctx: ClickContext) -> Any:
        _refuse_dry_run(ctx)
        return invoke(ctx)

    guarded = copy.copy(command)
    guarded.invoke = guarded_invoke
    guarded._refuses_dry_run = True
    return guarded


@dataclass(frozen=True)
class _Config:
    database_url: DatabaseURL
    initializer: Any
    template: str | None
    schema: str | None


def _unavailable(name: str, module: str, error: ImportError) -> Any:
    """A stand-in command that explains which module is missing and how to get it."""
    message = f"`db {name}` needs {module}, which cannot be imported ({error})"
    stub = typer.Typer()

    @stub.command(
        name,
        help=f"Unavailable: {module} cannot be imported. {_EXTRA_HINT}.",
        context_settings={
            "ignore_unknown_options": True,
            "allow_extra_args": True,
            "help_option_names": [],
        },
    )
    def fail(ctx: typer.Context) -> None:
        raise MissingExtraError(message, details=_EXTRA_HINT) from error

    command = typer.main.get_command(stub)
    command.name = name
    return command


class _DatabaseGroup(ControlCommandGroup):
    """The `db` group; `migrate`, `dump`, `restore` and `move` are built on first use."""

    config: ClassVar[_Config]

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return ["migrate", *_TRANSFER_COMMANDS, *super().list_commands(ctx)]

    def resolve_command(
        self, ctx: ClickContext, args: list[str]
    ) -> tuple[str | None, Any, list[str]]:
        """Resolve the subcommand; those that may write refuse to run in dry-run mode.

        `migrate` is a group: its own commands carry the check (see `_migrate`).
        """
        name, command, rest = super().resolve_command(ctx, args)
        if (
            command is not None
            and getattr(command, "name", name) not in READ_ONLY_COMMANDS
            and not hasattr(command, "list_commands")  # `migrate`, a group
        ):
            command = _refused_in_dry_run(command)
        return name, command, rest

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Any:
        if cmd_name == "migrate":
            return self._migrate()
        if cmd_name in _TRANSFER_COMMANDS:
            return self._transfer(ctx, cmd_name)
        return super().get_command(ctx, cmd_name)

    def _migrate(self) -> Any:
        try:
            from macrostrat.dinosaur.cli import create_cli
        except ImportError as exc:
            return _unavailable("migrate", "macrostrat.dinosaur.cli", exc)
        cfg = self.config
        app = create_cli(
            initializer=cfg.initializer,
            database_url=cfg.database_url,
            template=cfg.template,
            schema=cfg.schema,
        )
        group = typer.main.get_command(app)
        group.name = "migrate"
        group.help = "Plan and apply schema migrations (macrostrat.dinosaur)."
        commands = getattr(group, "commands", {})
        for name, command in list(commands.items()):
            if f"migrate {name}" not in READ_ONLY_COMMANDS:
                commands[name] = _refused_in_dry_run(command)
        return group

    def _transfer(self, ctx: ClickContext, name: str) -> Any:
        module = "macrostrat.database.transfer.cli"
        try:
            from macrostrat.database.transfer.cli import create_cli
        except ImportError as exc:
            return _unavailable(name, module, exc)
        group = typer.main.get_command(
            create_cli(database_url=self.config.database_url)
        )
        command = (
            group.get_command(ctx, name) if hasattr(group, "get_command") else None
        )
        if command is None:
            return _unavailable(
                name, module, ImportError(f"it has no `{name}` command")
            )
        return command


def _database_url(option: str | None, config: _Config) -> str:
    try:
        from macrostrat.database.transfer.cli import database_url_option
    except ImportError as exc:
        raise MissingExtraError(
            "The db commands need macrostrat.database with its `cli` extra, which "
            f"cannot be imported ({exc})",
            details=_EXTRA_HINT,
        ) from exc
    return database_url_option(option, config.database_url)


def _open_database(url: str) -> Any:
    try:
        from macrostrat.database import Database
    except ImportError as exc:
        raise MissingExtraError(
            f"The db commands need macrostrat.database, which cannot be imported ({exc})",
            details=_EXTRA_HINT,
        ) from exc
    return Database(url)


def _database_error(exc: Exception) -> DatabaseCommandError:
    text = str(exc).strip() or type(exc).__name__
    first, _, rest = text.partition("\n")
    return DatabaseCommandError(first, details=rest.strip() or None)


def _print_rows(result: Any) -> None:
    keys = list(result.keys())
    rows = result.all()
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*keys)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)
        return
    typer.echo("\t".join(keys))
    for row in rows:
        typer.echo("\t".join("" if v is None else str(v) for v in row))


def _database_option(bound: bool) -> Any:
    """The `--database` option of `sql` and `tables`.

    Its help names where the URL comes from without it: the app's database
    when the app gave one (`$MACROSTRAT_DATABASE_URL` is then not read),
    else `$MACROSTRAT_DATABASE_URL`.
    """
    where = "(default: the app's database)" if bound else f"[${DATABASE_ENV}]"
    return typer.Option(
        None, "--database", "-d", help=f"Database URL {where}", show_default=False
    )


_TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY(%(schemas)s::text[]))
ORDER BY 1, 2
"""

_MISSING_SCHEMAS_SQL = """
SELECT s.name FROM unnest(%(schemas)s::text[]) AS s(name)
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = s.name)
"""


def db_commands(
    database_url: DatabaseURL = None,
    *,
    initializer: Any = None,
    template: str | None = None,
    schema: str | None = None,
    help: str = "Manage the database: migrations, dump and restore, SQL.",
) -> typer.Typer:
    """Build the `db` command group (a Typer app) for an application.

    Commands: `migrate` (`plan`, `apply`, `dump-schema`; macrostrat.dinosaur),
    `dump`, `restore`, `move` (macrostrat.database.transfer), `sql` and
    `tables`. The database is `--database`, else `database_url`, else
    `$MACROSTRAT_DATABASE_URL` (read only when there is no `database_url`;
    the `--database` help says which applies). In dry-run mode only
    `READ_ONLY_COMMANDS` run.

    Args:
        database_url: The app's database URL, or a function returning it
            (called only when a command runs).
        initializer: The default `DatabaseInitializer` (a function building
            the ideal schema in an empty `Database`) for `migrate`.
        template: The template database for `migrate`'s throwaway target.
        schema: Limit `migrate` to this schema by default.
        help: The group's help text.
    """
    if callable(database_url):
        database_url = _checked_url_function(database_url)
    config = _Config(database_url, initializer, template, schema)
    database_opt = _database_option(database_url is not None)
    group_cls = type("DatabaseCommandGroup", (_DatabaseGroup,), {"config": config})
    app = CommandBase(cls=group_cls, help=help)

    @app.command("sql")
    def sql_command(
        statement: Annotated[
            str | None, typer.Argument(help="SQL to run (one or more statements).")
        ] = None,
        file: Annotated[
            list[Path] | None,
            typer.Option(
                "--file", "-f", help="A SQL file to run (repeatable; - is stdin)."
            ),
        ] = None,
        database: str | None = database_opt,
        atomic: Annotated[
            bool,
            typer.Option(
                "--atomic", help="One transaction: an error undoes every statement."
            ),
        ] = False,
    ) -> None:
        """Run SQL from the command line or from files, printing any rows.

        Stops at the first failing statement (its file and line are named);
        earlier statements stay committed unless --atomic is given.
        """
        if (statement is None) == (not file):
            raise typer.BadParameter(
                "give either a SQL statement or --file (not both)",
                param_hint="STATEMENT/--file",
            )
        sources: list[Any] = []
        if statement is not None:
            sources.append(statement)
        for path in file or []:
            if str(path) == "-":
                sources.append(sys.stdin.read())
            elif not path.is_file():
                raise typer.BadParameter(f"no such file: {path}", param_hint="--file")
            else:
                sources.append(path)
        url = _database_url(database, config)
        with _open_database(url) as db:
            try:
                results = db.run_sql(
                    sources, raise_errors=True, atomic=atomic, interpret_as_file=False
                )
            except Exception as exc:
                if not _is_database_error(exc):
                    raise
                raise _database_error(exc) from exc
            for result in results:
                if result.returns_rows:
                    _print_rows(result)
                elif result.statusmessage:
                    typer.echo(result.statusmessage)

    @app.command("tables")
    def tables_command(
        schema_: Annotated[
            list[str] | None,
            typer.Option("--schema", "-s", help="Only this schema (repeatable)."),
        ] = None,
        database: str | None = database_opt,
    ) -> None:
        """List the tables as schema.name, one per line."""
        schemas = list(schema_ or [])
        url = _database_url(database, config)
        with _open_database(url) as db:
            try:
                if schemas:
                    missing = (
                        db.run_query(
                            _MISSING_SCHEMAS_SQL,
                            {"schemas": schemas},
                            interpret_as_file=False,
                        )
                        .scalars()
                        .all()
                    )
                    if missing:
                        raise DatabaseCommandError(
                            f"No such schema: {', '.join(missing)}",
                            details="Check the --schema option.",
                        )
                rows = db.run_query(
                    _TABLES_SQL, {"schemas": schemas}, interpret_as_file=False
                ).all()
            except ApplicationError:
                raise
            except Exception as exc:
                if not _is_database_error(exc):
                    raise
                raise _database_error(exc) from exc
        for row in rows:
            typer.echo(f"{row.schema}.{row.name}")

    return app


def _is_database_error(exc: Exception) -> bool:
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from macrostrat.database.errors import MacrostratDatabaseError
    except ImportError:
        return False
    return isinstance(exc, (MacrostratDatabaseError, SQLAlchemyError))


def add_db_commands(
    command: typer.Typer,
    database_url: DatabaseURL = None,
    *,
    name: str = "db",
    rich_help_panel: str | None = "Database",
    **kwargs: Any,
) -> typer.Typer:
    """Mount the `db` command group on an application's command line, in one line.

    `add_db_commands(main, lambda: os.environ["MYAPP_DATABASE_URL"])`

    Args:
        command: The command line (e.g. a `ControlCommand`).
        database_url: See [`db_commands`][macrostrat.app_frame.db_commands].
        name: The group's name.
        rich_help_panel: The help panel it is listed in.
        **kwargs: Passed to `db_commands` (`initializer`, `template`,
            `schema`, `help`).

    Returns:
        The group, to add more commands to.
    """
    group = db_commands(database_url, **kwargs)
    command.add_typer(group, name=name, rich_help_panel=rich_help_panel)
    return group
