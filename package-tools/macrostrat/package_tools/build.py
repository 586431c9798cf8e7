"""Build the workspace's packages and check the built wheels' metadata.

uv leaves a dependency on another workspace member exactly as written in
`pyproject.toml`, so a dependency without a version floor reaches the wheel
without one, and the released package may install against any old version
of its sibling. `check_wheels` opens every built wheel's `METADATA` and
checks each internal `Requires-Dist` (a lock-file check can't see this).
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import logging
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from ._process import Command
from .errors import MetadataCheckError
from .versioning import floor_problem
from .workspace import Package, Workspace

__all__ = [
    "Built",
    "build_command",
    "build_packages",
    "check_wheels",
    "find_artifacts",
    "wheel_problems",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    """The files built for one package.

    Attributes:
        package: The package.
        wheel: Its wheel.
        sdist: Its source distribution, if one was built.
    """

    package: Package
    wheel: Path
    sdist: Path | None

    @property
    def files(self) -> list[Path]:
        """The wheel and the sdist (if any)."""
        return [self.wheel] if self.sdist is None else [self.sdist, self.wheel]


def build_command(workspace: Workspace, package: Package, out_dir: Path) -> Command:
    """The `uv build` command for one package.

    `--no-sources` makes the build ignore `[tool.uv.sources]`, as a build
    from the published sdist would (uv recommends it before publishing).
    """
    return Command.of(
        "uv",
        "build",
        "--no-sources",
        "--out-dir",
        out_dir,
        package.path,
        cwd=workspace.root,
    )


def find_artifacts(package: Package, out_dir: Path) -> tuple[Path | None, Path | None]:
    """Find the wheel and sdist of a package's current version in a directory.

    Returns:
        `(wheel, sdist)`, either of which may be `None`.
    """
    wheel = sdist = None
    for path in sorted(out_dir.iterdir()) if out_dir.is_dir() else []:
        try:
            if path.name.endswith(".whl"):
                name, version, *_ = parse_wheel_filename(path.name)
                if name == package.key and version == package.version:
                    wheel = path
            elif path.name.endswith((".tar.gz", ".zip")):
                name, version = parse_sdist_filename(path.name)
                if name == package.key and version == package.version:
                    sdist = path
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
    return wheel, sdist


def build_packages(
    workspace: Workspace,
    packages: Iterable[Package],
    out_dir: str | os.PathLike[str],
) -> list[Built]:
    """Build packages (sdist and wheel) one after another, in the order given.

    Stops at the first failure.

    Args:
        workspace: The workspace.
        packages: The packages to build (usually `workspace.select(...)`).
        out_dir: Where to put the files (created if needed; relative paths
            are taken from the current directory).

    Returns:
        What was built, per package.

    Raises:
        CommandError: If `uv build` fails (names the command).
        MetadataCheckError: If `uv build` succeeded but no wheel of the
            package's current version appeared in `out_dir`.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    built: list[Built] = []
    for package in packages:
        log.info("Building %s %s", package.name, package.version)
        build_command(workspace, package, out).run()
        wheel, sdist = find_artifacts(package, out)
        if wheel is None:
            raise MetadataCheckError(
                f"uv build made no wheel for {package.name} {package.version} in {out}",
                [],
            )
        built.append(Built(package, wheel, sdist))
    return built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        names = [
            n
            for n in archive.namelist()
            if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        if len(names) != 1:
            raise MetadataCheckError(
                f"{wheel.name} has no single .dist-info/METADATA", []
            )
        raw = archive.read(names[0])
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def wheel_problems(workspace: Workspace, package: Package, wheel: Path) -> list[str]:
    """Check one wheel's METADATA against the workspace.

    The wheel's `Name` and `Version` must be the package's, and every
    `Requires-Dist` on another workspace package must carry the floor
    `>=<that package's current version>` (see `floor_problem`).

    Returns:
        One line per problem (empty when the wheel is fine).
    """
    metadata = _metadata(wheel)
    problems: list[str] = []
    if canonicalize_name(metadata.get("Name", "")) != package.key:
        problems.append(
            f"{wheel.name}: Name is {metadata.get('Name')!r}, expected {package.name!r}"
        )
    if Version(metadata.get("Version", "0")) != package.version:
        problems.append(
            f"{wheel.name}: Version is {metadata.get('Version')!r}, expected {package.version}"
        )
    for line in metadata.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"{wheel.name}: invalid Requires-Dist {line!r}: {exc}")
            continue
        key = canonicalize_name(requirement.name)
        if key == package.key or key not in workspace.packages:
            continue
        problem = floor_problem(requirement, workspace.packages[key].version)
        if problem:
            problems.append(f"{wheel.name}: Requires-Dist {line!r} {problem}")
    return problems


def check_wheels(workspace: Workspace, built: Sequence[Built]) -> None:
    """Check every built wheel with `wheel_problems`.

    Raises:
        MetadataCheckError: Listing every problem in every wheel.
    """
    problems = [p for b in built for p in wheel_problems(workspace, b.package, b.wheel)]
    if problems:
        raise MetadataCheckError(
            f"{len(problems)} problem(s) in the metadata of the built wheels", problems
        )
    log.info("Checked the metadata of %d wheel(s)", len(built))
