"""The ``dinosaur`` command line: plan, apply and dump schema migrations.

`create_cli` returns a Typer app that application CLIs can mount (for example
``app.add_typer(create_cli(initializer=init, database_url=url), name="db")``);
``dinosaur`` is the same app with nothing bound.

Commands:
    plan: show the statements and their hazards.  Exit code 0 when there is
        nothing to do, 2 when there are changes, 3 when some are unsafe.
    apply: apply the plan (``--allow-hazard NAME`` to accept unsafe hazards),
        first on a schema-only clone unless ``--no-dry-run``.  Exit code 0 on
        success, 3 when unsafe statements were refused, 1 on any other error.
    dump-schema: print the ``pg_dump --schema-only`` text of the database.

``dinosaur --version`` prints the installed version.

The ideal schema comes from ``--target URL`` (a database that has it),
``--schema-file PATH`` (SQL files run into a throwaway database), or
``--initializer module:function`` (a `DatabaseInitializer`); the throwaway
database is created on the live server, or in a throwaway cluster with
``--target-cluster local|docker|auto`` (for a role without ``CREATEDB``).
A plan is printed as `format_plan`'s text: on a terminal its SQL is
highlighted (Rich's ``Syntax``, Pygments' PostgreSQL lexer), piped or redirected (or
with ``NO_COLOR`` set) it is plain, byte for byte.

Mistakes are reported before anything is created, as a usage error (exit
code 2: a missing schema file, a bad option value) or a short ``Error:``
message (exit code 1: an unreachable database, a missing privilege, an SQL
error, named with its file and line); ``dinosaur --verbose`` adds the
traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, Any

import typer

from ._cli_report import VERBOSE_KEY, reported_errors
from ._cli_support import ClusterBackend, build_target, preflight, resolve_target
from .apply import use_concurrent_indexes
from .diff import AutoMigration, DatabaseInitializer, format_plan
from .errors import UnsafeMigrationError
from .hazards import PlannedStatement, parse_hazards

__all__ = [
    "EXIT_CHANGES",
    "EXIT_NOTHING",
    "EXIT_UNSAFE",
    "create_cli",
    "highlighted_plan",
    "main",
]

EXIT_NOTHING = 0
EXIT_CHANGES = 2
EXIT_UNSAFE = 3

DATABASE_ENV = "MACROSTRAT_DATABASE_URL"


TargetOpt = Annotated[
    str | None, typer.Option("--target", help="URL of a database with the ideal schema")
]
FileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--schema-file",
        help="SQL file(s) that build the ideal schema",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
InitOpt = Annotated[
    str | None,
    typer.Option("--initializer", help="module:function building the schema"),
]
TemplateOpt = Annotated[
    str | None, typer.Option("--template", help="Template for the throwaway target")
]
SchemaOpt = Annotated[str | None, typer.Option("--schema", help="Only this schema")]
TargetClusterOpt = Annotated[
    ClusterBackend | None,
    typer.Option(
        "--target-cluster",
        help="Where to build the ideal schema: a throwaway cluster (local, "
        "docker or auto), or live (a throwaway database on the live server, "
        "which needs CREATEDB). Default: local when this machine has server "
        "binaries and no --template is given, else live",
        case_sensitive=False,
    ),
]
PrivilegesOpt = Annotated[
    bool | None,
    typer.Option(
        "--privileges/--no-privileges",
        help="Also plan grants, default privileges and the owners the ideal "
        "schema states (roles are not created: they must exist on the live "
        "server)",
        show_default=False,
    ),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", help="Show the traceback of an error.")
]


def _database_option(bound: bool) -> Any:
    """The ``--database`` option; its help names where the URL comes from otherwise.

    Parameters:
        bound: the application gave a URL (then ``$MACROSTRAT_DATABASE_URL``
            is not read, and the help does not mention it).
    """
    where = "(default: the application's database)" if bound else f"[${DATABASE_ENV}]"
    return typer.Option(
        None,
        "--database",
        "-d",
        help=f"Live database URL {where}",
        show_default=False,
    )


def _set_verbose(ctx: typer.Context, verbose: bool) -> None:
    """Record ``--verbose`` where every subcommand's error report looks."""
    if verbose:
        ctx.meta[VERBOSE_KEY] = True


# the lines of `format_plan` that name hazards, and the transaction note
_PLAN_LINE_STYLES = (
    (r"(?m)^--\s+UNSAFE\b.*$", "bold not dim red"),
    (r"(?m)^--\s+note\b.*$", "not dim yellow"),
    (r"(?m)^-- runs (?:before|after) the transaction\b.*$", "not dim cyan"),
)


def _wants_plain(console: Any) -> bool:
    """True when the plan goes out as plain text: not a terminal, or ``NO_COLOR``.

    ``NO_COLOR`` counts when it is set and not empty (https://no-color.org);
    a dumb terminal (``TERM=dumb``) gets plain text too.

    Parameters:
        console: the Rich console that would print it.
    """
    if os.environ.get("NO_COLOR", "") != "":
        return True
    return not console.is_terminal or console.is_dumb_terminal


# Characters the highlighter would change (Pygments expands tabs, turns
# carriage returns into newlines and drops a byte order mark; Rich's ``Text``
# strips bell, backspace, vertical tab, form feed and carriage return): each
# is highlighted as a space, and put back afterwards.
_SHADOW = str.maketrans(dict.fromkeys("\t\r\ufeff\a\b\v\f", " "))


def highlighted_plan(plan: list[PlannedStatement]) -> Any:
    """`format_plan`'s text as a Rich ``Text``, the SQL highlighted.

    The characters are exactly `format_plan`'s (``.plain`` equals it, tabs,
    carriage returns and all); the SQL is coloured by Pygments'
    ``postgresql`` lexer (its generic ``sql`` lexer marks dollar-quoted
    bodies as errors) through Rich's ``Syntax``, in the terminal's own ANSI
    colours; the unsafe hazards are bold red, the notes yellow, and the
    statements that run outside the transaction say so in cyan.

    Parameters:
        plan: the classified plan.
    """
    from rich.syntax import Syntax
    from rich.text import Text

    text = format_plan(plan)
    # the highlighter sees a copy of the same length (see _SHADOW), so its
    # styles fit the plan's own characters
    shadow = text.translate(_SHADOW)
    rich_text = Syntax(
        shadow, "postgresql", theme="ansi_dark", background_color="default"
    ).highlight(shadow)
    # Syntax ends the code with a newline when it has none; keep the text's own
    extra = len(rich_text.plain) - len(shadow)
    if extra > 0:
        rich_text.right_crop(extra)
    if rich_text.plain != shadow:  # never seen: the plan's text, unhighlighted
        rich_text = Text(shadow)
    if shadow != text:
        # Text strips control characters from whatever it is given: the
        # plan's own characters go back in place, one for one
        rich_text._text[:] = [text]
    for pattern, style in _PLAN_LINE_STYLES:
        rich_text.highlight_regex(pattern, style)
    return rich_text


def _print_plan(plan: list[PlannedStatement]) -> None:
    """Print a plan: highlighted on a terminal, `format_plan`'s text otherwise.

    Piped or redirected output (and ``NO_COLOR``, see `_wants_plain`) is
    `format_plan`'s text, byte for byte; on a terminal the same characters
    are printed with the SQL highlighted (`highlighted_plan`): never wrapped,
    cropped or justified by Rich, and tabs are not expanded.
    """
    from rich.console import Console
    from rich.segment import Segments

    console = Console()
    if _wants_plain(console):
        typer.echo(format_plan(plan), nl=False)
        return
    # printing the Text itself would expand its tabs; its segments are printed
    # as they are
    segments = Segments(highlighted_plan(plan).render(console))
    console.print(segments, soft_wrap=True, end="")


def create_cli(
    initializer: DatabaseInitializer | None = None,
    database_url: str | Callable[[], str] | None = None,
    *,
    template: str | None = None,
    schema: str | None = None,
    privileges: bool = False,
) -> typer.Typer:
    """A Typer app with ``plan``, ``apply`` and ``dump-schema``.

    Every option is checked before anything is created: a schema file that
    does not exist, a bad ``--initializer``, ``--dry-run-cluster``,
    ``--lock-timeout`` or ``--template`` is a usage error (exit status 2); an
    unreachable database, a role without ``CREATEDB`` (when a throwaway
    database would be created on the live server), an SQL error in a schema
    file (named with its file and line) and other failures print a short
    ``Error:`` message (exit status 1). ``--verbose`` (before the command,
    or the application's ``--verbose``) also prints the traceback.

    Parameters:
        initializer: the default `DatabaseInitializer` for the ideal schema.
        database_url: the default live database (or a function returning it);
            otherwise ``--database`` or ``$MACROSTRAT_DATABASE_URL``.
        template: the database the throwaway target is created from.
        schema: limit the diff to this schema by default.
        privileges: plan grants, default privileges and stated owners by
            default (``--privileges``/``--no-privileges`` decide per run).
    """
    app = typer.Typer(
        help="Diff-based schema migrations that never destroy data unasked.",
        no_args_is_help=True,
        add_completion=False,
    )
    database_opt = _database_option(database_url is not None)

    @app.callback(help="Diff-based schema migrations that never destroy data unasked.")
    def _group(ctx: typer.Context, verbose: VerboseOpt = False) -> None:
        _set_verbose(ctx, verbose)

    def live_url(value: str | None) -> str:
        from macrostrat.database.transfer.cli import database_url_option

        return database_url_option(value, database_url)

    def source_for(
        target: str | None,
        files: list[Path] | None,
        init_spec: str | None,
        tmpl: str | None,
        cluster: ClusterBackend | None,
    ) -> Any:
        return resolve_target(
            target=target,
            files=files,
            initializer=init_spec,
            default_initializer=initializer,
            cluster=cluster.value if cluster is not None else None,
            template=tmpl,
            default_template=template,
        )

    @app.command("plan")
    def plan_cmd(
        ctx: typer.Context,
        database: str | None = database_opt,
        target: TargetOpt = None,
        schema_file: FileOpt = None,
        initializer_: InitOpt = None,
        template_: TemplateOpt = None,
        schema_: SchemaOpt = None,
        target_cluster: TargetClusterOpt = None,
        privileges_: PrivilegesOpt = None,
    ) -> None:
        """Show the statements and their hazards (exit 0 none, 2 changes, 3 unsafe)."""
        with reported_errors(ctx):
            live = live_url(database)
            source = source_for(
                target, schema_file, initializer_, template_, target_cluster
            )
            preflight(live, source, command="plan")
            with build_target(live, source) as tgt:
                m = AutoMigration(live, tgt, schema=schema_ or schema)
                m.add_all_changes(privileges=_chosen(privileges_, privileges))
        if not m.statements:
            typer.echo("-- no changes")
            raise typer.Exit(EXIT_NOTHING)
        _print_plan(m.plan)
        raise typer.Exit(EXIT_UNSAFE if not m.is_safe else EXIT_CHANGES)

    @app.command("apply")
    def apply_cmd(
        ctx: typer.Context,
        database: str | None = database_opt,
        target: TargetOpt = None,
        schema_file: FileOpt = None,
        initializer_: InitOpt = None,
        template_: TemplateOpt = None,
        schema_: SchemaOpt = None,
        target_cluster: TargetClusterOpt = None,
        privileges_: PrivilegesOpt = None,
        allow_hazard: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-hazard", help="Accept this unsafe hazard (repeatable)"
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run/--no-dry-run",
                help="First apply on a schema-only clone and check convergence",
            ),
        ] = True,
        lock_timeout: Annotated[
            str,
            typer.Option(
                "--lock-timeout", help="PostgreSQL lock_timeout (5s, 500ms, 0: none)"
            ),
        ] = "5s",
        concurrent_indexes: Annotated[
            bool,
            typer.Option(
                "--concurrent-indexes",
                help="Build indexes on existing tables CONCURRENTLY, after the transaction",
            ),
        ] = False,
        dry_run_cluster: Annotated[
            ClusterBackend | None,
            typer.Option(
                "--dry-run-cluster",
                help="Rehearse on a schema-only clone in a throwaway cluster "
                "(local, docker or auto), or live: on the live server (the "
                "default, which needs CREATEDB)",
                case_sensitive=False,
            ),
        ] = None,
    ) -> None:
        """Apply the plan in one transaction, then check convergence."""
        from .legacy import create_schema_clone

        rehearsal_cluster = (
            None
            if dry_run_cluster in (None, ClusterBackend.live)
            else dry_run_cluster.value
        )
        with reported_errors(ctx, codes=((UnsafeMigrationError, EXIT_UNSAFE),)):
            live = live_url(database)
            try:
                allowed = parse_hazards(allow_hazard or ())
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--allow-hazard") from exc
            source = source_for(
                target, schema_file, initializer_, template_, target_cluster
            )
            sch = schema_ or schema
            manage = _chosen(privileges_, privileges)
            preflight(
                live,
                source,
                command="apply",
                lock_timeout=lock_timeout,
                clone_on_live=dry_run and rehearsal_cluster is None,
            )
            with build_target(live, source) as tgt:
                if dry_run:
                    with create_schema_clone(live, cluster=rehearsal_cluster) as clone:
                        rehearsal = AutoMigration(clone, tgt, schema=sch)
                        # the clone is made without privileges or owners
                        # (pg_dump --no-owner --no-privileges): the rehearsal
                        # checks everything else
                        rehearsal.add_all_changes()
                        rehearsal.apply(
                            quiet=True,
                            allow_hazards=allowed,
                            lock_timeout=lock_timeout,
                            check_convergence=True,
                            concurrent_indexes=concurrent_indexes,
                        )
                    typer.echo("-- dry run on a schema-only clone converged")
                m = AutoMigration(live, tgt, schema=sch)
                m.add_all_changes(privileges=manage)
                if not m.statements:
                    typer.echo("-- no changes")
                    return
                _print_plan(
                    use_concurrent_indexes(m.plan) if concurrent_indexes else m.plan
                )
                ran = m.apply(
                    quiet=True,
                    allow_hazards=allowed,
                    lock_timeout=lock_timeout,
                    check_convergence=True,
                    concurrent_indexes=concurrent_indexes,
                )
        typer.echo(f"-- applied {len(ran)} statement(s); the database converged")

    @app.command("dump-schema")
    def dump_cmd(ctx: typer.Context, database: str | None = database_opt) -> None:
        """Print the schema of the database (``pg_dump --schema-only``)."""
        from .legacy import dump_schema

        with reported_errors(ctx):
            typer.echo(dump_schema(live_url(database)), nl=False)

    return app


def _chosen(flag: bool | None, default: bool) -> bool:
    """A ``--flag/--no-flag`` option's value, or the app's default when not given."""
    return default if flag is None else flag


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"dinosaur {installed_version('macrostrat.dinosaur')}")
        raise typer.Exit()


app = create_cli()
"""The ``dinosaur`` program: `create_cli` with nothing bound, plus ``--version``."""


@app.callback()
def _program(
    ctx: typer.Context,
    verbose: VerboseOpt = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Show the macrostrat.dinosaur version and exit.",
        ),
    ] = False,
) -> None:
    """Diff-based schema migrations that never destroy data unasked."""
    _set_verbose(ctx, verbose)


def main() -> None:
    """Run the ``dinosaur`` command."""
    app(prog_name="dinosaur")
