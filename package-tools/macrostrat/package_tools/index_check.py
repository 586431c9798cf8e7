"""Check the workspace's versions against what a package index has released.

`mono status --check` and `mono publish` (before anything is uploaded) ask
the index for every released version of each package that would be
published (private packages and packages without classifiers are never
asked about) and find:

- a package whose current version is already on the index but is not ours
  (no release tag `<name>-v<version>` in the repository): it could never be
  uploaded, and `pip` would install the other project's files;
- a package whose version is lower than the newest one on the index: `pip`
  would prefer that one;
- an internal dependency whose range (`macrostrat.database>=4.6.0,<5`) is
  met by a release on the index that is not ours: a wheel built from here
  could install against it.

"Ours" means released from this repository: `mono publish` tags
`<name>-v<version>` after each upload, so a version with that tag is ours.
`mono publish` also accepts an untagged version whose files on the index
are byte for byte the ones it builds (an upload that stopped before its
tag); see `verify_files`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from ._git import tags
from .index import DEFAULT_INDEX_URL, DEFAULT_TIMEOUT, IndexFile, released_versions
from .workspace import Package, Workspace

__all__ = ["IndexCheck", "PackageReleases", "check_index", "verify_files"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackageReleases:
    """What the index has released of one package, and which of it is ours.

    Attributes:
        package: The workspace package.
        releases: Every version on the index, with its files.
        ours: The versions with a release tag `<name>-v<version>` here.
    """

    package: Package
    releases: Mapping[Version, tuple[IndexFile, ...]]
    ours: frozenset[Version] = frozenset()

    @property
    def newest(self) -> Version | None:
        """The highest version on the index (yanked and pre-releases count)."""
        return max(self.releases, default=None)

    @property
    def taken(self) -> bool:
        """Whether the current version is on the index without our tag."""
        return (
            self.package.version in self.releases
            and self.package.version not in self.ours
        )


@dataclass
class IndexCheck:
    """The outcome of `check_index`.

    Attributes:
        url: The index asked.
        packages: What the index has, per package key (only those asked).
        problems: Versions lower than the newest on the index and internal
            ranges met by releases that are not ours, one line each.
        taken: Packages whose current version is on the index without our
            release tag (see `IndexCheck.messages`).
    """

    url: str
    packages: dict[str, PackageReleases] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    taken: list[Package] = field(default_factory=list)

    def taken_message(self, package: Package) -> str:
        """Why a version that is on the index can't be ours."""
        newest = self.packages[package.key].newest
        return (
            f"{package.name} {package.version} already exists on {self.url} and was "
            f"not released from here (no tag {package.tag}); choose a version "
            f"above {newest}"
        )

    @property
    def messages(self) -> list[str]:
        """Every problem, the taken versions first."""
        return [self.taken_message(p) for p in self.taken] + self.problems

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.taken and not self.problems


def _tagged(package: Package, all_tags: Iterable[str]) -> frozenset[Version]:
    prefix = f"{package.name}-v"
    found = set()
    for tag in all_tags:
        if tag.startswith(prefix):
            try:
                found.add(Version(tag[len(prefix) :]))
            except InvalidVersion:
                continue
    return frozenset(found)


def _listed(versions: Sequence[Version], limit: int = 6) -> str:
    shown = [str(v) for v in versions[-limit:]]
    more = len(versions) - len(shown)
    return (f"{more} older and " if more else "") + ", ".join(shown)


def check_index(
    workspace: Workspace,
    packages: Iterable[Package] | None = None,
    *,
    index_url: str = DEFAULT_INDEX_URL,
    simple: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> IndexCheck:
    """Ask an index about the workspace's packages and find what would clash.

    Every publishable package (not private, with classifiers) is looked up,
    since dependents' ranges are checked against their dependencies'
    releases; `packages` chooses which ones are checked.

    Args:
        workspace: The workspace.
        packages: The packages to check (default: every publishable one).
        index_url: The JSON API root (PyPI's by default), or with `simple`
            a simple API root.
        simple: Ask the simple API (see `released_versions`).
        timeout: Seconds to wait for each request.

    Returns:
        The check; `check.ok` when nothing clashes.

    Raises:
        IndexQueryError: If the index can't be asked (unreachable, an HTTP
            error, a timeout): never read as "nothing released".
    """
    publishable = {
        key: p
        for key, p in workspace.packages.items()
        if not p.private and p.classifiers and key not in workspace.config.private
    }
    chosen = (
        list(publishable.values())
        if packages is None
        else [p for p in packages if p.key in publishable]
    )
    all_tags = tags(workspace.root)
    check = IndexCheck(index_url)
    for key, package in publishable.items():
        releases = released_versions(
            index_url, package.name, simple=simple, timeout=timeout
        )
        check.packages[key] = PackageReleases(
            package, releases, _tagged(package, all_tags)
        )
    checked = {p.key for p in chosen}
    for package in chosen:
        state = check.packages[package.key]
        newest = state.newest
        if state.taken:
            check.taken.append(package)
        if newest is not None and package.version < newest:
            check.problems.append(
                f"{package.name} {package.version} is lower than {newest}, the newest "
                f"version on {index_url}; choose a version above {newest}"
            )
        for dep in package.dependencies:
            target = check.packages.get(dep.name)
            if target is None:
                continue
            specifier = Requirement(dep.requirement).specifier
            theirs = sorted(
                v
                for v in target.releases
                if specifier.contains(v, prereleases=True)
                and v not in target.ours
                # the dependency's own version is its own check's business
                and not (dep.name in checked and v == target.package.version)
            )
            if theirs:
                check.problems.append(
                    f"{package.name}: dependency {dep.requirement!r} is met by "
                    f"{target.package.name} {_listed(theirs)} on {index_url}, "
                    f"which were not released from here; raise its floor above "
                    f"{theirs[-1]}"
                )
    return check


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(index_files: Iterable[IndexFile], built: Iterable[Path]) -> list[str]:
    """Compare a version's files on the index with the files built here.

    Builds are reproducible, so files uploaded from this commit have the
    same SHA-256 as the ones built now.

    Args:
        index_files: The version's files on the index.
        built: The files built here (wheel and sdist).

    Returns:
        One line per file on the index that is not byte for byte one of
        ours (empty when every file there is ours).
    """
    local = {path.name: path for path in built}
    problems = []
    for file in index_files:
        mine = local.get(file.filename)
        if mine is None:
            problems.append(f"{file.filename} was not built here")
        elif file.sha256 is None:
            problems.append(f"{file.filename}: the index gives no SHA-256 to compare")
        elif file.sha256.lower() != _sha256(mine):
            problems.append(f"{file.filename} differs from the one built here")
    return problems
