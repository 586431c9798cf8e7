"""Turn change fragments into version bumps, dependency floors and CHANGELOG sections.

`plan_versions` works out every change in memory; `apply_versions` writes
them all at once (or none, if anything fails) and refreshes the lock file.

Rules:

- A package's bump is the highest bump any fragment asks for it.
- Every dependency on another workspace package gets the floor
  `>=<that package's new version>`; upper bounds are kept unless they would
  exclude the new version (then they become `<next major>`).
- A package whose dependency strings changed gets at least the
  `update-internal-dependencies` bump (patch by default), so dependents of
  a bumped package are bumped in turn.
- A version whose CHANGELOG section is still `Unreleased` has not been
  released: its entries are added to that section and the version moves only
  if a fragment asks for more than the version already implies (1.4.0
  implies a minor bump, 2.0.0 a major one, 1.4.1 a patch).
- Every section written or completed gets the date of the run, or with
  `unreleased` the label `Unreleased` (the versions are chosen now and
  dated by a later `mono version`; pending sections without new entries
  are then left alone).
"""

from __future__ import annotations

import datetime
import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from ._files import FileTransaction
from ._process import run_command
from ._pyproject import edit_pyproject, read_text
from .changelog import find_section, update_changelog
from .changesets import Changeset, load_changesets
from .errors import VersioningError
from .workspace import Bump, Package, Workspace

__all__ = [
    "Release",
    "VersionPlan",
    "apply_versions",
    "bump_version",
    "floor_problem",
    "plan_versions",
    "raise_floor",
]

log = logging.getLogger(__name__)

_LOWER_BOUNDS = {">=", ">", "==", "~=", "==="}


def bump_version(version: Version, bump: Bump) -> Version:
    """Return the next version: `1.4.2` → `1.4.3` (patch), `1.5.0`, `2.0.0`.

    Pre-release, post-release and local parts are dropped.
    """
    major, minor, patch = (*version.release, 0, 0)[:3]
    if bump is Bump.MAJOR:
        return Version(f"{major + 1}.0.0")
    if bump is Bump.MINOR:
        return Version(f"{major}.{minor + 1}.0")
    return Version(f"{major}.{minor}.{patch + 1}")


def _implied_bump(version: Version) -> Bump:
    """The bump an unreleased version already carries: x.0.0 major, x.y.0 minor."""
    _, minor, patch = (*version.release, 0, 0)[:3]
    if patch:
        return Bump.PATCH
    return Bump.MINOR if minor else Bump.MAJOR


def floor_problem(requirement: Requirement, version: Version) -> str | None:
    """Say what is wrong with an internal dependency's version floor, if anything.

    A good requirement has `>=version` as its only lower bound and allows
    `version` (e.g. `macrostrat.utils>=1.4.0,<2` for version 1.4.0).

    Args:
        requirement: The dependency.
        version: The current version of the package depended on.

    Returns:
        `None` if the floor is right, else a short description.
    """
    specs = list(requirement.specifier)
    floors = [s for s in specs if s.operator == ">="]
    others = [s for s in specs if s.operator in _LOWER_BOUNDS - {">="}]
    if not floors:
        return f"has no floor (expected >={version})"
    if others or len(floors) > 1:
        return (
            f"has the lower bounds {requirement.specifier} (expected only >={version})"
        )
    if Version(floors[0].version) != version:
        return f"has floor >={floors[0].version} (expected >={version})"
    if not requirement.specifier.contains(version, prereleases=True):
        return f"{requirement.specifier} excludes the current version {version}"
    return None


def raise_floor(requirement: str, version: Version) -> str:
    """Return a requirement string with the floor `>=version`.

    Lower bounds (`>=`, `>`, `==`, `~=`) are replaced by `>=version`; `<`,
    `<=` and `!=` clauses are kept unless they exclude `version` (an upper
    bound is then raised to the next major version). Extras and markers are
    kept. A requirement whose floor is already right is returned unchanged,
    as written; so is a direct URL reference.

    Args:
        requirement: The requirement as written, e.g. `"macrostrat.utils>=1.3,<2"`.
        version: The version to require at least.

    Returns:
        The new requirement string, e.g. `"macrostrat.utils>=1.4.0,<2"`.
    """
    req = Requirement(requirement)
    if req.url or floor_problem(req, version) is None:
        return requirement
    clauses = [f">={version}"]
    for spec in sorted(req.specifier, key=str):
        if spec.operator in _LOWER_BOUNDS:
            continue
        if spec.contains(version, prereleases=True):
            clauses.append(str(spec))
        elif spec.operator in ("<", "<="):
            clauses.append(f"<{version.major + 1}")
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{req.name}{extras}{','.join(dict.fromkeys(clauses))}{marker}"


@dataclass(frozen=True)
class Release:
    """What `mono version` does to one package.

    Attributes:
        package: The package as it is now.
        version: Its version afterwards (may equal the current one).
        bump: The bump applied, or `None` if the version does not move.
        entries: `(heading, text)` CHANGELOG entries added.
        requirements: Old → new dependency strings in its `pyproject.toml`.
    """

    package: Package
    version: Version
    bump: Bump | None
    entries: tuple[tuple[str, str], ...] = ()
    requirements: Mapping[str, str] = field(default_factory=dict)


@dataclass
class VersionPlan:
    """Every change `mono version` would make, computed but not yet written.

    Attributes:
        workspace: The workspace.
        releases: One per package that changes, in dependency order.
        changesets: The fragments applied (their files are deleted).
        files: New content per file; `None` means the file is deleted.
    """

    workspace: Workspace
    releases: list[Release]
    changesets: list[Changeset]
    files: dict[Path, str | None]

    @property
    def empty(self) -> bool:
        """Whether there is nothing to do."""
        return not self.files

    def diff(self) -> str:
        """A unified diff of every file change, relative to the workspace root."""
        chunks: list[str] = []
        for path, new in self.files.items():
            old = read_text(path) if path.exists() else ""
            name = path.relative_to(self.workspace.root).as_posix()
            chunks.extend(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    (new or "").splitlines(keepends=True),
                    f"a/{name}",
                    "/dev/null" if new is None else f"b/{name}",
                )
            )
        return "".join(chunks)


def plan_versions(
    workspace: Workspace,
    changesets: Sequence[Changeset] | None = None,
    *,
    date: str | None = None,
    unreleased: bool = False,
) -> VersionPlan:
    """Work out the version bumps, floors and CHANGELOG sections (nothing is written).

    Args:
        workspace: The workspace.
        changesets: The fragments to apply; defaults to the pending ones
            (`load_changesets`).
        date: The date for CHANGELOG headings; defaults to today.
        unreleased: Label the sections `Unreleased` instead of dating them
            (choose the versions now, cut the release later).

    Returns:
        The plan; `plan.empty` when there is nothing to do.

    Raises:
        ChangesetError: If a pending fragment is malformed.
        VersioningError: If a `pyproject.toml` can't be edited safely.
    """
    if changesets is None:
        changesets = load_changesets(workspace)
    if unreleased and date:
        raise VersioningError("give a date or unreleased, not both")
    date = "Unreleased" if unreleased else date or datetime.date.today().isoformat()
    requested: dict[str, Bump] = {}
    entries: dict[str, list[tuple[str, str]]] = {}
    for changeset in changesets:
        for name, level in changeset.packages.items():
            key = workspace.get(name).key
            if key not in requested or level.rank > requested[key].rank:
                requested[key] = level
            entries.setdefault(key, []).extend(
                (changeset.kind.heading, text) for text in changeset.entries()
            )
    cascade = workspace.config.update_internal_dependencies
    versions: dict[str, Version] = {}
    releases: list[Release] = []
    files: dict[Path, str | None] = {}
    for key, package in workspace.packages.items():
        updates = {
            dep.requirement: raise_floor(dep.requirement, versions[dep.name])
            for dep in package.dependencies
        }
        updates = {old: new for old, new in updates.items() if old != new}
        bump = requested.get(key)
        added = list(entries.get(key, []))
        if updates:
            if bump is None or bump.rank < cascade.rank:
                bump = cascade
            floors = ", ".join(f"`{req}`" for req in updates.values())
            added.append(("Changed", f"Raised internal dependency floors: {floors}."))
        changelog = read_text(package.changelog) if package.changelog.exists() else None
        section = find_section(changelog or "", package.version)
        pending = section is not None and section.unreleased
        new = package.version
        if pending and (bump is None or bump.rank <= _implied_bump(new).rank):
            bump = None
        elif bump is not None:
            new = bump_version(package.version, bump)
        versions[key] = new
        if bump is None and not updates and (not pending or unreleased):
            continue
        text = read_text(package.pyproject)
        edited = edit_pyproject(
            text,
            package.pyproject,
            version=str(new) if new != package.version else None,
            requirements=updates,
        )
        if edited != text:
            files[package.pyproject] = edited
        files[package.changelog] = update_changelog(
            changelog,
            package.name,
            current=package.version,
            new=new,
            entries=added,
            date=date,
        )
        releases.append(Release(package, new, bump, tuple(added), updates))
    for changeset in changesets:
        if changeset.path is not None:
            files[changeset.path] = None
    return VersionPlan(workspace, releases, list(changesets), files)


def _lock_files(workspace: Workspace) -> list[Path]:
    locks = [workspace.root / "uv.lock"]
    locks += [p.path / "uv.lock" for p in workspace.packages.values() if not p.member]
    return [lock for lock in locks if lock.exists()]


def _committable(root: Path, paths: Sequence[Path]) -> list[Path]:
    """The paths git can stage: existing files, and deleted files it tracks."""
    out = run_command(["git", "ls-files", "-z", "--", *paths], root)
    tracked = {(root / name).resolve() for name in out.split("\0") if name}
    return [p for p in paths if p.exists() or p.resolve() in tracked]


def _commit(plan: VersionPlan, paths: Sequence[Path]) -> None:
    """Commit exactly `paths` (never `git add .`); unstage them again on failure."""
    root = plan.workspace.root
    paths = _committable(root, paths)
    lines = [
        f"- {r.package.name} {r.package.version} -> {r.version}" for r in plan.releases
    ]
    message = "Version packages\n\n" + "\n".join(lines) + "\n"
    try:
        run_command(["git", "add", "-A", "--", *paths], root)
        run_command(["git", "commit", "--quiet", "-m", message, "--", *paths], root)
    except BaseException:
        try:
            run_command(["git", "reset", "--quiet", "--", *paths], root)
        except Exception:  # pragma: no cover - keep the original error
            log.exception("could not unstage %s", ", ".join(map(str, paths)))
        raise


def apply_versions(
    plan: VersionPlan, *, lock: bool = True, commit: bool = False
) -> list[Path]:
    """Write a version plan: all files, or none if anything fails.

    The files are written together (see `plan.files`), then `uv lock`
    refreshes each lock file (the root `uv.lock`, and those of
    `[tool.uv.sources]` path packages). With `commit`, exactly the files
    changed (plus the lock files `uv lock` changed) are staged with `git add
    -A -- <paths>` and committed; nothing else in the working tree is
    touched. If `uv lock` or the commit fails, every file is restored.

    Args:
        plan: The plan from `plan_versions`.
        lock: Whether to run `uv lock`.
        commit: Whether to commit the changed files.

    Returns:
        The files changed (absolute paths), including the lock files that
        `uv lock` changed.

    Raises:
        VersioningError: If the files could not be written.
        CommandError: If `uv lock` or git fails (the files are restored).
    """
    root = plan.workspace.root
    transaction = FileTransaction()
    for path, content in plan.files.items():
        if content is None:
            transaction.delete(path)
        else:
            transaction.write(path, content)
    locks = _lock_files(plan.workspace) if lock else []
    before = {path: path.read_bytes() for path in locks}
    for path in locks:
        transaction.watch(path)
    changed = list(plan.files)
    if commit:
        staged = run_command(
            ["git", "diff", "--cached", "--name-only", "--", *changed, *locks], root
        )
        if staged.strip():
            raise VersioningError(
                "files mono would commit already have staged changes",
                details=staged.strip(),
            )
    with transaction.applied():
        for path in locks:
            log.info("Refreshing %s", path)
            run_command(["uv", "lock"], path.parent)
        changed += [path for path in locks if path.read_bytes() != before[path]]
        if commit:
            _commit(plan, changed)
    for release in plan.releases:
        log.info(
            "%s %s -> %s",
            release.package.name,
            release.package.version,
            release.version,
        )
    return changed
