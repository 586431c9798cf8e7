"""Find a workspace's packages, their versions and their dependencies on each other."""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ._pyproject import load_toml
from .errors import WorkspaceError

__all__ = [
    "PRIVATE_CLASSIFIER",
    "Bump",
    "Dependency",
    "Package",
    "Workspace",
    "WorkspaceConfig",
    "find_workspace_root",
    "load_workspace",
]

log = logging.getLogger(__name__)

PRIVATE_CLASSIFIER = "Private :: Do Not Upload"
"""The classifier that keeps a package from being published (as on PyPI)."""


class Bump(str, enum.Enum):
    """How much a version moves: `patch` < `minor` < `major`."""

    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        """1 for patch, 2 for minor, 3 for major."""
        return ("patch", "minor", "major").index(self.value) + 1


@dataclass(frozen=True)
class Dependency:
    """A package's dependency on another package of the same workspace.

    Attributes:
        name: The canonical name of the package depended on.
        requirement: The requirement string as written in `pyproject.toml`.
        extra: The optional-dependency group it is in, or `None` for
            `[project].dependencies`.
    """

    name: str
    requirement: str
    extra: str | None = None


@dataclass(frozen=True)
class Package:
    """One package of the workspace.

    Attributes:
        name: The name in `[project].name`, e.g. `macrostrat.utils`.
        version: `[project].version`.
        path: The package's directory (absolute).
        classifiers: `[project].classifiers` (empty if there are none).
        dependencies: Its dependencies on other packages of the workspace.
        member: Whether it is a `[tool.uv.workspace]` member (rather than a
            `[tool.uv.sources]` path entry).
    """

    name: str
    version: Version
    path: Path
    classifiers: tuple[str, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    member: bool = True

    @property
    def key(self) -> str:
        """The canonical name (`macrostrat-utils`), used to compare names."""
        return canonicalize_name(self.name)

    @property
    def pyproject(self) -> Path:
        """The package's `pyproject.toml`."""
        return self.path / "pyproject.toml"

    @property
    def changelog(self) -> Path:
        """The package's `CHANGELOG.md` (which may not exist)."""
        return self.path / "CHANGELOG.md"

    @property
    def private(self) -> bool:
        """Whether it carries the `Private :: Do Not Upload` classifier."""
        return PRIVATE_CLASSIFIER in self.classifiers

    @property
    def tag(self) -> str:
        """The release tag of the current version, e.g. `macrostrat.utils-v1.4.0`."""
        return f"{self.name}-v{self.version}"


@dataclass(frozen=True)
class WorkspaceConfig:
    """Settings from `[tool.mono]` in the workspace's root `pyproject.toml`.

    Attributes:
        changes_dir: Where change fragments live, relative to the root
            (`changes-dir`, default `.changes`).
        update_internal_dependencies: The bump given to a package whose
            dependency floors were raised (`update-internal-dependencies`,
            `patch` or `minor`, default `patch`).
        private: Names of packages meant to stay private (`private`); `mono
            status --check` accepts `Private :: Do Not Upload` only on these.
    """

    changes_dir: str = ".changes"
    update_internal_dependencies: Bump = Bump.PATCH
    private: frozenset[str] = frozenset()

    @classmethod
    def from_table(cls, table: Mapping[str, Any], path: Path) -> WorkspaceConfig:
        """Read the `[tool.mono]` table (unknown keys are an error)."""
        known = {"changes-dir", "update-internal-dependencies", "private"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise WorkspaceError(f"{path}: unknown [tool.mono] settings: {unknown}")
        try:
            level = Bump(table.get("update-internal-dependencies", "patch"))
        except ValueError:
            level = Bump.MAJOR
        if level is Bump.MAJOR:
            raise WorkspaceError(
                f"{path}: [tool.mono] update-internal-dependencies must be "
                "'patch' or 'minor'"
            )
        return cls(
            changes_dir=str(table.get("changes-dir", ".changes")),
            update_internal_dependencies=level,
            private=frozenset(canonicalize_name(n) for n in table.get("private", ())),
        )


@dataclass
class Workspace:
    """A uv workspace (or a project with `[tool.uv.sources]` path packages).

    Attributes:
        root: The directory of the root `pyproject.toml` (absolute).
        packages: The packages by canonical name, dependencies first.
        config: The `[tool.mono]` settings.
    """

    root: Path
    packages: dict[str, Package] = field(default_factory=dict)
    config: WorkspaceConfig = field(default_factory=WorkspaceConfig)

    @property
    def changes_dir(self) -> Path:
        """The directory of change fragments."""
        return self.root / self.config.changes_dir

    def get(self, name: str) -> Package:
        """Return a package by name (any spelling that canonicalizes the same).

        Raises:
            WorkspaceError: If there is no such package.
        """
        try:
            return self.packages[canonicalize_name(name)]
        except KeyError:
            known = ", ".join(p.name for p in self.packages.values())
            raise WorkspaceError(
                f"no package named {name!r} in {self.root}", details=f"Known: {known}"
            ) from None

    def select(self, omit: Iterable[str] = ()) -> list[Package]:
        """The packages in dependency order, without the omitted ones.

        A name in `omit` that is not a package here is logged and ignored
        (as `mono` 2.0 did), so scripts that omit a package whose directory
        is gone keep working.

        Args:
            omit: Package names to leave out.
        """
        left_out = {canonicalize_name(name) for name in omit}
        for name in sorted(left_out - set(self.packages)):
            log.warning("--omit %s: no such package in %s", name, self.root)
        return [p for key, p in self.packages.items() if key not in left_out]


def find_workspace_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Find the workspace root at or above a directory.

    The nearest directory whose `pyproject.toml` has `[tool.uv.workspace]`
    wins; if there is none, the nearest directory with a `pyproject.toml`.

    Args:
        start: Where to start; defaults to the current directory, read when
            called.

    Returns:
        The root directory (absolute).

    Raises:
        WorkspaceError: If no `pyproject.toml` is found.
    """
    here = Path(os.getcwd() if start is None else start).resolve()
    nearest: Path | None = None
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            nearest = nearest or directory
            if "workspace" in load_toml(candidate).get("tool", {}).get("uv", {}):
                return directory
    if nearest is None:
        raise WorkspaceError(f"no pyproject.toml in {here} or above")
    return nearest


def _member_dirs(root: Path, workspace: Mapping[str, Any]) -> list[Path]:
    excluded: set[Path] = set()
    for pattern in workspace.get("exclude", []):
        excluded.update(p.resolve() for p in root.glob(pattern))
    found: list[Path] = []
    for pattern in workspace.get("members", []):
        matches = sorted(root.glob(pattern))
        if not matches:
            log.warning("workspace member pattern %r matches nothing", pattern)
        for path in matches:
            resolved = path.resolve()
            if not path.is_dir() or resolved in excluded or resolved in found:
                continue
            if not (path / "pyproject.toml").is_file():
                raise WorkspaceError(
                    f"workspace member {path} has no pyproject.toml",
                    details="uv requires one in every member directory.",
                )
            found.append(resolved)
    return found


def _source_dirs(root: Path, sources: Mapping[str, Any]) -> list[Path]:
    """Directories of `[tool.uv.sources]` entries with a `path` (others are skipped)."""
    found: list[Path] = []
    for name, source in sources.items():
        entries = source if isinstance(source, list) else [source]
        for entry in entries:
            if not isinstance(entry, Mapping) or "path" not in entry:
                log.debug("source %r is not a local path; skipped", name)
                continue
            path = (root / entry["path"]).resolve()
            if not (path / "pyproject.toml").is_file():
                log.debug(
                    "source %r (%s) is not a project directory; skipped", name, path
                )
                continue
            if path not in found:
                found.append(path)
    return found


def _load_package(
    directory: Path, member: bool
) -> tuple[Package, list[tuple[str, str | None]]]:
    pyproject = directory / "pyproject.toml"
    project = load_toml(pyproject).get("project")
    if not isinstance(project, Mapping) or "name" not in project:
        raise WorkspaceError(f"{pyproject} has no [project] name")
    if "version" not in project:
        raise WorkspaceError(
            f"{pyproject} has no static [project].version",
            details="mono reads and writes versions there; dynamic versions are not supported.",
        )
    try:
        version = Version(str(project["version"]))
    except InvalidVersion as exc:
        raise WorkspaceError(
            f"{pyproject}: invalid version {project['version']!r}"
        ) from exc
    requirements: list[tuple[str, str | None]] = [
        (req, None) for req in project.get("dependencies", [])
    ]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        requirements.extend((req, extra) for req in reqs)
    package = Package(
        name=str(project["name"]),
        version=version,
        path=directory,
        classifiers=tuple(project.get("classifiers", ())),
        member=member,
    )
    return package, requirements


def load_workspace(path: str | os.PathLike[str] | None = None) -> Workspace:
    """Read a workspace: its packages, versions and internal dependencies.

    Packages are the `[tool.uv.workspace]` members (`members` globs minus
    `exclude` globs) and the directories named by `path` entries of the
    root's `[tool.uv.sources]` (the layout `mono` 2.0 used). Sources of other
    kinds (`workspace`, `git`, `url`, `index`) are skipped. The root project
    itself is never one of the packages.

    Args:
        path: The workspace root. Defaults to the root found at or above the
            current directory (see `find_workspace_root`), read when called.

    Returns:
        The workspace, with packages in dependency order (ties by name).

    Raises:
        WorkspaceError: If the root has no `pyproject.toml`, defines no
            packages, a package's `pyproject.toml` is unusable, two packages
            share a name, or the packages depend on each other in a cycle.
    """
    root = find_workspace_root() if path is None else Path(path).resolve()
    document = load_toml(root / "pyproject.toml")
    tool = document.get("tool", {})
    uv = tool.get("uv", {})
    config = WorkspaceConfig.from_table(tool.get("mono", {}), root / "pyproject.toml")
    members = _member_dirs(root, uv.get("workspace", {}))
    legacy = [d for d in _source_dirs(root, uv.get("sources", {})) if d not in members]
    directories = [(d, True) for d in members] + [(d, False) for d in legacy]
    directories = [(d, m) for d, m in directories if d != root]
    if not directories:
        raise WorkspaceError(
            f"{root / 'pyproject.toml'} defines no packages",
            details="Expected [tool.uv.workspace] members or [tool.uv.sources] path entries.",
        )
    loaded: dict[str, tuple[Package, list[tuple[str, str | None]]]] = {}
    for directory, member in directories:
        package, requirements = _load_package(directory, member)
        if package.key in loaded:
            raise WorkspaceError(
                f"two packages are named {package.name!r}: "
                f"{loaded[package.key][0].path} and {directory}"
            )
        loaded[package.key] = (package, requirements)
    packages: dict[str, Package] = {}
    for key, (package, requirements) in loaded.items():
        deps: list[Dependency] = []
        for text, extra in requirements:
            try:
                name = canonicalize_name(Requirement(text).name)
            except InvalidRequirement as exc:
                raise WorkspaceError(f"{package.pyproject}: {exc}") from exc
            if name in loaded and name != key:
                deps.append(Dependency(name, text, extra))
        packages[key] = Package(
            name=package.name,
            version=package.version,
            path=package.path,
            classifiers=package.classifiers,
            dependencies=tuple(deps),
            member=package.member,
        )
    return Workspace(root=root, packages=_in_dependency_order(packages), config=config)


def _in_dependency_order(packages: dict[str, Package]) -> dict[str, Package]:
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for key, package in packages.items():
        sorter.add(key, *(d.name for d in package.dependencies))
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = " -> ".join(packages[k].name for k in exc.args[1])
        raise WorkspaceError(
            f"packages depend on each other in a cycle: {cycle}"
        ) from exc
    ordered: dict[str, Package] = {}
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        for key in ready:
            ordered[key] = packages[key]
        sorter.done(*ready)
    return ordered
