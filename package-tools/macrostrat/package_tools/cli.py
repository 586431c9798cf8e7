"""The `mono` command line: install, changeset, version, status, build, publish.

About 540 lines, most of them the Typer options and help texts of the `mono`
commands; the work is done in the modules each command calls.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.highlighter import NullHighlighter
from rich.logging import RichHandler
from rich.table import Table

from macrostrat.utils import ApplicationError

from .build import build_packages, check_wheels
from .changesets import ChangeKind, write_changeset
from .index import DEFAULT_INDEX_URL, DEFAULT_TIMEOUT
from .install import install_commands, install_packages
from .publish import plan_publish, publish_packages, readiness_problems
from .status import PackageStatus, workspace_status
from .versioning import apply_versions, plan_versions
from .workspace import Bump, load_workspace

__all__ = ["mono"]

mono = typer.Typer(
    name="mono",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Version, check, build and publish the packages of a uv workspace.",
)

PathOption = Annotated[
    Optional[Path],  # noqa: UP045 - the spelling every supported typer understands
    typer.Option(
        "--path",
        help="The workspace root. Default: the workspace around the current directory.",
        file_okay=False,
    ),
]
OmitOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--omit", help="Leave out this package (repeatable)."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be done; change nothing.")
]
NoIndexCheckOption = Annotated[
    bool,
    typer.Option(
        "--no-index-check",
        envvar="MONO_NO_INDEX_CHECK",
        help="Don't ask the package index about released versions (offline use).",
    ),
]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds to wait for each index request.", min=0.1)
]


def _stdout() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _say(text: str = "", style: str | None = None) -> None:
    _stdout().print(text, style=style, markup=False)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Rich table in a terminal; aligned plain text when piped."""
    console = _stdout()
    if console.is_terminal:
        table = Table(*headers, box=None, header_style="bold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    widths = [
        max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)
    ]
    for row in [headers, *rows]:
        console.print(
            "  ".join(
                str(c).ljust(w) for c, w in zip(row, widths, strict=True)
            ).rstrip(),
            markup=False,
        )


def _version_callback(value: bool) -> None:
    if value:
        _say(f"mono {installed_version('macrostrat.package_tools')}")
        raise typer.Exit()


@contextmanager
def _reported() -> Iterator[None]:
    """Print our errors as `error: message` plus details, and exit with status 1."""
    try:
        yield
    except ApplicationError as exc:
        console = Console(stderr=True, soft_wrap=True, highlight=False)
        console.print(f"error: {exc.message}", style="bold red", markup=False)
        if exc.details:
            console.print(exc.details, markup=False)
        raise typer.Exit(1) from None


@mono.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Log every command run and its output."),
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Show mono's version and exit.",
        ),
    ] = False,
) -> None:
    """Version, check, build and publish the packages of a uv workspace."""
    logger = logging.getLogger("macrostrat.package_tools")
    err = Console(stderr=True)
    if err.is_terminal:
        handler: logging.Handler = RichHandler(
            console=err, show_time=False, show_path=False, highlighter=NullHighlighter()
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(handler.level)

    def _cleanup() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(_cleanup)


@mono.command()
def install(
    path: PathOption = None,
    omit: OmitOption = None,
    skip_root: Annotated[
        bool,
        typer.Option(
            "--skip-root/--no-skip-root", help="Don't lock and sync the root."
        ),
    ] = False,
    virtualenvs: Annotated[
        bool,
        typer.Option(
            "--virtualenvs/--no-virtualenvs",
            help="Also sync each [tool.uv.sources] path package's own environment.",
        ),
    ] = False,
    dry_run: DryRunOption = False,
) -> None:
    """Install all packages in the root project's virtual environment."""
    with _reported():
        workspace = load_workspace(path)
        commands = install_commands(
            workspace, omit=omit or [], skip_root=skip_root, virtualenvs=virtualenvs
        )
        if dry_run:
            for command in commands:
                _say(f"{command}    # in {command.cwd}")
            return
        install_packages(workspace, commands=commands)
        _say("Installed.")


def _parse_packages(values: Sequence[str]) -> dict[str, Bump | None]:
    chosen: dict[str, Bump | None] = {}
    for value in values:
        name, _, level = value.partition(":")
        try:
            chosen[name.strip()] = Bump(level.strip()) if level else None
        except ValueError:
            raise typer.BadParameter(
                f"{value!r}: the bump after ':' must be patch, minor or major",
                param_hint="--package",
            ) from None
    return chosen


@mono.command()
def changeset(
    package: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--package",
            "-p",
            help="A package concerned, as NAME or NAME:BUMP (repeatable).",
        ),
    ] = None,
    kind: Annotated[
        Optional[ChangeKind],  # noqa: UP045
        typer.Option("--type", "-t", help="The type of change.", case_sensitive=False),
    ] = None,
    bump: Annotated[
        Optional[Bump],  # noqa: UP045
        typer.Option(
            "--bump",
            "-b",
            help="The bump for packages given without one. "
            "Default: major for breaking/removed, patch for fixed, else minor.",
        ),
    ] = None,
    message: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--message", "-m", help="The CHANGELOG entry (Markdown)."),
    ] = None,
    path: PathOption = None,
) -> None:
    """Write a change fragment for `mono version` to apply later."""
    with _reported():
        workspace = load_workspace(path)
        interactive = sys.stdin.isatty()
        if not package and interactive:
            names = ", ".join(p.name for p in workspace.packages.values())
            package = typer.prompt(f"Packages ({names})").replace(",", " ").split()
        if kind is None and interactive:
            kinds = ", ".join(k.value for k in ChangeKind)
            answer = typer.prompt(f"Type ({kinds})", default="changed")
            try:
                kind = ChangeKind(answer.strip().lower())
            except ValueError:
                raise typer.BadParameter(f"{answer!r} is not one of {kinds}") from None
        if not message and interactive:
            message = typer.prompt("Describe the change")
        if not package or kind is None or not message:
            raise typer.BadParameter("give --package, --type and --message")
        written = write_changeset(
            workspace, _parse_packages(package), kind, message, bump
        )
        levels = ", ".join(
            f"{name} ({level.value})" for name, level in written.packages.items()
        )
        _say(f"Wrote {written.path} for {levels}")


@mono.command()
def version(
    path: PathOption = None,
    dry_run: DryRunOption = False,
    date: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="The date for the CHANGELOG headings (YYYY-MM-DD). Default: today."
        ),
    ] = None,
    lock: Annotated[
        bool,
        typer.Option(
            "--lock/--no-lock", help="Refresh the lock file(s) with `uv lock`."
        ),
    ] = True,
    commit: Annotated[
        bool,
        typer.Option(
            "--commit", help="Commit exactly the files changed (never `git add .`)."
        ),
    ] = False,
    unreleased: Annotated[
        bool,
        typer.Option(
            "--unreleased",
            help="Label the CHANGELOG sections Unreleased instead of dating them "
            "(choose the versions now; a later `mono version` dates them).",
        ),
    ] = False,
) -> None:
    """Apply the change fragments: bump versions and floors, write CHANGELOGs.

    All files are written together, or none if anything fails.
    """
    with _reported():
        if unreleased and date:
            raise typer.BadParameter("give --date or --unreleased, not both")
        workspace = load_workspace(path)
        plan = plan_versions(workspace, date=date, unreleased=unreleased)
        if plan.empty:
            _say(
                "Nothing to version: no change fragments, floors and CHANGELOGs up to date."
            )
            return
        rows = [
            [
                r.package.name,
                str(r.package.version),
                str(r.version),
                r.bump.value if r.bump else "-",
                "; ".join(text for _, text in r.entries)
                or "date the Unreleased section",
            ]
            for r in plan.releases
        ]
        _table(["package", "from", "to", "bump", "changes"], rows)
        if dry_run:
            _say()
            _stdout().out(plan.diff(), highlight=False)
            return
        changed = apply_versions(plan, lock=lock, commit=commit)
        root = workspace.root
        _say(f"Changed {len(changed)} file(s):")
        for changed_path in changed:
            _say(
                f"  {changed_path.relative_to(root) if changed_path.is_relative_to(root) else changed_path}"
            )
        if commit:
            _say("Committed them.")


@mono.command()
def status(
    path: PathOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit with status 1 if any problem is found (for CI)."
        ),
    ] = False,
    index_url: Annotated[
        str,
        typer.Option(
            envvar="MONO_INDEX_URL",
            help="The JSON API (like PyPI's) asked for released versions.",
        ),
    ] = DEFAULT_INDEX_URL,
    no_index_check: NoIndexCheckOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Show each package's version, next version, CHANGELOG and release state.

    Unless --no-index-check, the package index is asked for every released
    version of each package: a version already there that is not ours, a
    version below the newest there, or an internal dependency range met by a
    release there that is not ours is a problem.
    """
    with _reported():
        workspace = load_workspace(path)
        report = workspace_status(
            workspace,
            index_url=None if no_index_check else index_url,
            timeout=timeout,
        )

        def on_index(s: PackageStatus) -> str:
            if report.index is None or s.package.key not in report.index.packages:
                return "?"
            return str(s.on_index) if s.on_index else "-"

        rows = [
            [
                s.package.name,
                str(s.package.version),
                str(s.next_version) if s.next_version != s.package.version else "-",
                s.changelog or "missing",
                str(s.released) if s.released else "-",
                on_index(s),
                "yes" if s.publishable else "no",
            ]
            for s in report.packages
        ]
        _table(
            ["package", "version", "next", "changelog", "released", "index", "publish"],
            rows,
        )
        if report.index is not None:
            _say(f"Released versions from {report.index.url}")
        elif no_index_check:
            _say("The package index was not asked (--no-index-check).")
        _say(
            f"{report.changesets} pending change fragment(s) in {workspace.changes_dir}"
        )
        if report.ok:
            _say("No problems found.")
            return
        _say(
            f"{len(report.problems)} problem(s):",
            style="bold red" if check else "yellow",
        )
        for problem in report.problems:
            _say(f"  - {problem}")
        if check:
            raise typer.Exit(1)


@mono.command()
def build(
    path: PathOption = None,
    omit: OmitOption = None,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out-dir", "-o", help="Where to put the files. Default: <root>/dist."
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check", help="Check the wheels' internal dependency floors."
        ),
    ] = True,
) -> None:
    """Build every package (sdist and wheel) and check the wheels' METADATA."""
    with _reported():
        workspace = load_workspace(path)
        target = out_dir if out_dir is not None else workspace.root / "dist"
        built = build_packages(workspace, workspace.select(omit or []), target)
        for item in built:
            _say(
                f"{item.package.name} {item.package.version}: "
                + ", ".join(f.name for f in item.files)
            )
        if check:
            check_wheels(workspace, built)
            _say(f"Metadata of {len(built)} wheel(s): internal dependency floors ok.")


@mono.command()
def publish(
    path: PathOption = None,
    omit: OmitOption = None,
    dry_run: DryRunOption = False,
    push_tags: Annotated[
        bool,
        typer.Option("--push-tags", help="Push the release tags made to the remote."),
    ] = False,
    remote: Annotated[
        str, typer.Option(help="The git remote for --push-tags.")
    ] = "origin",
    publish_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="The upload URL (as `uv publish --publish-url`). Default: PyPI."
        ),
    ] = None,
    check_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="The simple index to check for existing files. "
            "Default: PyPI's; required with --publish-url."
        ),
    ] = None,
    index_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            envvar="MONO_INDEX_URL",
            help="The JSON API asked for released versions before anything is "
            "uploaded. Default: PyPI's; with --check-url, that simple index.",
        ),
    ] = None,
    no_index_check: NoIndexCheckOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out-dir", "-o", help="Where to build. Default: a temporary directory."
        ),
    ] = None,
) -> None:
    """Publish all packages that need to be published.

    In dependency order, skipping private packages, packages without
    classifiers and versions already on the index; each package is tagged
    <name>-v<version> after its upload succeeds. Before anything is
    uploaded, the index is asked for released versions (as `status --check`
    does) unless --no-index-check.
    """
    with _reported(), tempfile.TemporaryDirectory(prefix="mono-publish-") as scratch:
        workspace = load_workspace(path)
        plan = plan_publish(
            workspace,
            out_dir=out_dir if out_dir is not None else scratch,
            omit=omit or [],
            check_url=check_url,
            publish_url=publish_url,
            push_tags=push_tags,
            remote=remote,
            timeout=timeout,
            index_url=index_url,
            check_index=not no_index_check,
        )
        rows = [
            [i.package.name, str(i.package.version), i.action.value, i.reason]
            for i in plan.items
        ]
        _table(["package", "version", "action", "why"], rows)
        for warning in plan.warnings:
            _say(f"warning: {warning}", style="yellow")
        if dry_run:
            problems = readiness_problems(plan)
            commands = plan.commands()
            _say("Commands that would run:" if commands else "Nothing to publish.")
            for command in commands:
                _say(f"  {command}")
            if problems:
                _say("publish would refuse to start:", style="bold red")
                for problem in problems:
                    _say(f"  - {problem}")
                raise typer.Exit(1)
            return
        result = publish_packages(plan)
        if not plan.to_publish:
            _say(
                "Nothing to publish: every package is on the index already or is never published."
            )
            return
        for package in result.published:
            _say(f"Published {package.name} {package.version}")
        if result.tags:
            _say(f"Tagged {', '.join(result.tags)}")
        if result.pushed:
            _say(f"Pushed {', '.join(result.pushed)} to {remote}")
        elif result.published:
            tags = " ".join(f"refs/tags/{p.tag}" for p in result.published)
            _say(
                f"Tags were not pushed (use --push-tags, or: git push {remote} {tags})"
            )
