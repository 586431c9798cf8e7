"""The release state of a workspace, and the checks `mono status --check` runs in CI.

Problems found (each fails `mono status --check`):

- a package that would be published has no CHANGELOG section for its
  current version, or an empty one (`## [1.4.0] - Unreleased` counts: a
  version moved in `pyproject.toml` needs its entry in the same change);
- its version is lower than its latest release tag;
- it has no classifiers (so `mono publish` would skip it);
- it carries `Private :: Do Not Upload` without being listed in
  `[tool.mono] private` (or is listed there without carrying it);
- a dependency on another workspace package lacks the floor
  `>=<that package's version>`;
- a lock file is stale (`uv lock --check` fails);
- a change fragment is malformed or names an unknown package;
- with an index to ask (`index_url`; `mono status` asks PyPI's JSON API
  unless `--no-index-check`): a version already on the index that is not
  ours, a version lower than the newest there, or an internal dependency
  range met by a release there that is not ours (see `index_check`), or an
  index that can't be asked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from ._git import tags
from ._process import run_command
from ._pyproject import read_text
from .changelog import Section, find_section
from .changesets import load_changesets
from .errors import ChangesetError, CommandError, IndexQueryError, VersioningError
from .index import DEFAULT_TIMEOUT
from .index_check import IndexCheck, check_index
from .versioning import VersionPlan, floor_problem, plan_versions
from .workspace import PRIVATE_CLASSIFIER, Package, Workspace

__all__ = ["PackageStatus", "StatusReport", "lock_problems", "workspace_status"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackageStatus:
    """The release state of one package.

    Attributes:
        package: The package.
        next_version: The version `mono version` would give it now.
        changelog: The label of its current version's CHANGELOG section (a
            date or `Unreleased`), or `None` if there is none.
        released: The highest version among its `<name>-v<version>` tags.
        publishable: Whether `mono publish` would consider it.
        on_index: The newest version of it on the index, when the index was
            asked and has one.
    """

    package: Package
    next_version: Version
    changelog: str | None
    released: Version | None
    publishable: bool
    on_index: Version | None = None


@dataclass
class StatusReport:
    """The state of every package, and the problems found.

    Attributes:
        packages: One entry per package, in dependency order.
        problems: What fails `mono status --check`, one line each.
        changesets: The number of pending change fragments.
        index: The index check, when an index was asked (and answered).
    """

    packages: list[PackageStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    changesets: int = 0
    index: IndexCheck | None = None

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def lock_problems(workspace: Workspace) -> list[str]:
    """Run `uv lock --check` for every lock file; describe the stale ones."""
    roots = [workspace.root] + [
        p.path for p in workspace.packages.values() if not p.member
    ]
    problems = []
    for root in roots:
        if not (root / "uv.lock").exists():
            continue
        try:
            run_command(["uv", "lock", "--check"], root)
        except CommandError as exc:
            reason = (exc.output.strip().splitlines() or ["no output"])[-1]
            problems.append(
                f"{root / 'uv.lock'} is stale (`uv lock --check`: {reason})"
            )
    return problems


def _released(package: Package, all_tags: Sequence[str]) -> Version | None:
    prefix = f"{package.name}-v"
    versions = []
    for tag in all_tags:
        if tag.startswith(prefix):
            try:
                versions.append(Version(tag[len(prefix) :]))
            except InvalidVersion:
                continue
    return max(versions, default=None)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _package_problems(
    workspace: Workspace, package: Package, section: Section | None
) -> list[str]:
    name = f"{package.name} {package.version}"
    problems = []
    acknowledged = package.key in workspace.config.private
    if package.private and not acknowledged:
        problems.append(
            f"{name} carries {PRIVATE_CLASSIFIER!r}: it would never be published "
            "(list it under [tool.mono] private if that is intended)"
        )
    if acknowledged and not package.private:
        problems.append(
            f"{name} is listed under [tool.mono] private but lacks {PRIVATE_CLASSIFIER!r}"
        )
    if package.private or acknowledged:
        return problems
    if not package.classifiers:
        problems.append(f"{name} has no classifiers: `mono publish` would skip it")
    if section is None:
        problems.append(
            f"{name} has no CHANGELOG entry (a `## [{package.version}]` section in "
            f"{_relative(package.changelog, workspace.root)})"
        )
    elif not section.has_entries:
        problems.append(f"{name}: its CHANGELOG section lists no changes")
    return problems


def workspace_status(
    workspace: Workspace,
    *,
    check_locks: bool = True,
    index_url: str | None = None,
    simple: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> StatusReport:
    """Describe the workspace's release state and find problems.

    Args:
        workspace: The workspace.
        check_locks: Whether to run `uv lock --check`.
        index_url: The package index to check versions against (a JSON API
            root such as `https://pypi.org/pypi/`, or with `simple` a simple
            API root); `None` (the default) asks no index.
        simple: Ask `index_url` as a simple API.
        timeout: Seconds to wait for each index request.

    Returns:
        The report; `report.ok` is what `mono status --check` tests. An
        index that can't be asked is one of its problems.
    """
    report = StatusReport()
    if index_url is not None:
        try:
            report.index = check_index(
                workspace, index_url=index_url, simple=simple, timeout=timeout
            )
        except IndexQueryError as exc:
            report.problems.append(
                f"could not ask the package index: {exc} (check the network or "
                "--index-url, or skip this check with --no-index-check)"
            )
    plan: VersionPlan | None = None
    try:
        changesets = load_changesets(workspace)
        report.changesets = len(changesets)
        plan = plan_versions(workspace, changesets)
    except (ChangesetError, VersioningError) as exc:
        report.problems.append(str(exc))
    next_versions = {r.package.key: r.version for r in plan.releases} if plan else {}
    all_tags = tags(workspace.root)
    for package in workspace.packages.values():
        text = read_text(package.changelog) if package.changelog.exists() else ""
        section = find_section(text, package.version)
        label = None if section is None else (section.label or "").strip() or "undated"
        released = _released(package, all_tags)
        report.problems += _package_problems(workspace, package, section)
        if released is not None and package.version < released:
            report.problems.append(
                f"{package.name} {package.version} is lower than its release tag {released}"
            )
        for dep in package.dependencies:
            target = workspace.packages[dep.name]
            problem = floor_problem(Requirement(dep.requirement), target.version)
            if problem:
                report.problems.append(
                    f"{package.name}: dependency {dep.requirement!r} {problem}"
                )
        report.packages.append(
            PackageStatus(
                package=package,
                next_version=next_versions.get(package.key, package.version),
                changelog=label,
                released=released,
                publishable=not package.private and bool(package.classifiers),
                on_index=(
                    report.index.packages[package.key].newest
                    if report.index and package.key in report.index.packages
                    else None
                ),
            )
        )
    if report.index is not None:
        report.problems += report.index.messages
    if check_locks:
        report.problems += lock_problems(workspace)
    return report
