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
``--initializer module:function`` (a `DatabaseInitializer`).  Output is Rich
in a terminal and plain text when piped.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, Any

import typer

from .apply import use_concurrent_indexes
from .diff import AutoMigration, DatabaseInitializer, format_plan, target_database
from .errors import MigrationError, UnsafeMigrationError
from .hazards import PlannedStatement, parse_hazards

__all__ = ["EXIT_CHANGES", "EXIT_NOTHING", "EXIT_UNSAFE", "create_cli", "main"]

EXIT_NOTHING = 0
EXIT_CHANGES = 2
EXIT_UNSAFE = 3

DATABASE_ENV = "MACROSTRAT_DATABASE_URL"


DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", "-d", help=f"Live database URL [${DATABASE_ENV}]"),
]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="URL of a database with the ideal schema")
]
FileOpt = Annotated[
    list[Path] | None,
    typer.Option("--schema-file", help="SQL file(s) that build the ideal schema"),
]
InitOpt = Annotated[
    str | None,
    typer.Option("--initializer", help="module:function building the schema"),
]
TemplateOpt = Annotated[
    str | None, typer.Option("--template", help="Template for the throwaway target")
]
SchemaOpt = Annotated[str | None, typer.Option("--schema", help="Only this schema")]


def _load_initializer(spec: str) -> DatabaseInitializer:
    module, _, name = spec.partition(":")
    if not name:
        raise typer.BadParameter("use module:function", param_hint="--initializer")
    return getattr(importlib.import_module(module), name)


def _files_initializer(files: list[Path]) -> DatabaseInitializer:
    def init(db: Any) -> None:
        import psycopg

        from .diff import conninfo

        with psycopg.connect(conninfo(db), autocommit=True) as conn:
            for f in files:
                conn.execute(f.read_text())  # type: ignore[arg-type]

    return init


def _print_plan(plan: list[PlannedStatement]) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        typer.echo(format_plan(plan), nl=False)
        return
    from rich.syntax import Syntax

    for p in plan:
        for hazard, reason in zip(p.hazards, p.reasons, strict=True):
            style = "bold red" if hazard.unsafe else "yellow"
            label = "UNSAFE" if hazard.unsafe else "note"
            console.print(f"[{style}]{label} {hazard.value}[/]: {reason}", markup=True)
        if not p.transactional:
            console.print("[cyan]runs outside the transaction[/]")
        console.print(Syntax(p.sql.strip(), "sql", word_wrap=True))
        console.print()


def create_cli(
    initializer: DatabaseInitializer | None = None,
    database_url: str | Callable[[], str] | None = None,
    *,
    template: str | None = None,
    schema: str | None = None,
) -> typer.Typer:
    """A Typer app with ``plan``, ``apply`` and ``dump-schema``.

    Parameters:
        initializer: the default `DatabaseInitializer` for the ideal schema.
        database_url: the default live database (or a function returning it);
            otherwise ``--database`` or ``$MACROSTRAT_DATABASE_URL``.
        template: the database the throwaway target is created from.
        schema: limit the diff to this schema by default.
    """
    app = typer.Typer(
        help="Diff-based schema migrations that never destroy data unasked.",
        no_args_is_help=True,
        add_completion=False,
    )

    def live_url(value: str | None) -> str:
        from macrostrat.database.transfer.cli import database_url_option

        return database_url_option(value, database_url)

    @contextlib.contextmanager
    def target_for(
        live: str,
        target: str | None,
        files: list[Path] | None,
        init_spec: str | None,
        tmpl: str | None,
    ) -> Iterator[Any]:
        if target:
            yield target
            return
        if files:
            init = _files_initializer(files)
        elif init_spec:
            init = _load_initializer(init_spec)
        elif initializer is not None:
            init = initializer
        else:
            raise typer.BadParameter(
                "give --target, --schema-file or --initializer", param_hint="--target"
            )
        with target_database(live, init, template=tmpl or template) as url:
            yield url

    @app.command("plan")
    def plan_cmd(
        database: DatabaseOpt = None,
        target: TargetOpt = None,
        schema_file: FileOpt = None,
        initializer_: InitOpt = None,
        template_: TemplateOpt = None,
        schema_: SchemaOpt = None,
    ) -> None:
        """Show the statements and their hazards (exit 0 none, 2 changes, 3 unsafe)."""
        live = live_url(database)
        with target_for(live, target, schema_file, initializer_, template_) as tgt:
            m = AutoMigration(live, tgt, schema=schema_ or schema)
            m.add_all_changes()
        if not m.statements:
            typer.echo("-- no changes")
            raise typer.Exit(EXIT_NOTHING)
        _print_plan(m.plan)
        raise typer.Exit(EXIT_UNSAFE if not m.is_safe else EXIT_CHANGES)

    @app.command("apply")
    def apply_cmd(
        database: DatabaseOpt = None,
        target: TargetOpt = None,
        schema_file: FileOpt = None,
        initializer_: InitOpt = None,
        template_: TemplateOpt = None,
        schema_: SchemaOpt = None,
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
            str, typer.Option("--lock-timeout", help="PostgreSQL lock_timeout")
        ] = "5s",
        concurrent_indexes: Annotated[
            bool,
            typer.Option(
                "--concurrent-indexes",
                help="Build indexes on existing tables CONCURRENTLY, after the transaction",
            ),
        ] = False,
        dry_run_cluster: Annotated[
            str | None,
            typer.Option(
                "--dry-run-cluster",
                help="Rehearse on a throwaway cluster (local, docker or auto) "
                "instead of the live server",
            ),
        ] = None,
    ) -> None:
        """Apply the plan in one transaction, then check convergence."""
        from .legacy import create_schema_clone

        live = live_url(database)
        try:
            allowed = parse_hazards(allow_hazard or ())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--allow-hazard") from exc
        sch = schema_ or schema
        try:
            with target_for(live, target, schema_file, initializer_, template_) as tgt:
                if dry_run:
                    with create_schema_clone(live, cluster=dry_run_cluster) as clone:
                        rehearsal = AutoMigration(clone, tgt, schema=sch)
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
                m.add_all_changes()
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
        except UnsafeMigrationError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(EXIT_UNSAFE) from exc
        except MigrationError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"-- applied {len(ran)} statement(s); the database converged")

    @app.command("dump-schema")
    def dump_cmd(database: DatabaseOpt = None) -> None:
        """Print the schema of the database (``pg_dump --schema-only``)."""
        from .legacy import dump_schema

        try:
            typer.echo(dump_schema(live_url(database)), nl=False)
        except MigrationError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc

    return app


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"dinosaur {installed_version('macrostrat.dinosaur')}")
        raise typer.Exit()


app = create_cli()
"""The ``dinosaur`` program: `create_cli` with nothing bound, plus ``--version``."""


@app.callback()
def _program(
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


def main() -> None:
    """Run the ``dinosaur`` command."""
    app(prog_name="dinosaur")
