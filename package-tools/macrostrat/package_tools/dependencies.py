"""Upstream's `dependencies` helpers: read a `pyproject.toml`, list its local sources.

`mono` 2.0 found the packages of a monorepo with
`get_local_dependencies(load_pkg_config(root))`: the root's
`[tool.uv.sources]` entries, each with a `path`. These helpers keep that
interface over [`load_workspace`][macrostrat.package_tools.workspace.load_workspace]'s
rules: sources without a local path (git, url, index) are skipped instead of
raising `KeyError`, `workspace = true` sources are given the member's
directory, and TOML is read with `tomllib`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ._pyproject import load_toml
from .errors import WorkspaceError
from .workspace import _member_dirs

__all__ = ["PackageConfig", "get_local_dependencies", "load_pkg_config"]

log = logging.getLogger(__name__)


class PackageConfig(dict[str, Any]):
    """A parsed `pyproject.toml`: a plain `dict` that remembers its directory.

    Attributes:
        directory: The directory of the file (absolute).
    """

    def __init__(self, data: Mapping[str, Any], directory: Path) -> None:
        super().__init__(data)
        self.directory = directory


def load_pkg_config(path: str | os.PathLike[str]) -> PackageConfig:
    """Read a package's `pyproject.toml`.

    Args:
        path: The package directory (its `pyproject.toml` is read), or the
            `pyproject.toml` file itself.

    Returns:
        The parsed document, a `dict` with a `directory` attribute.

    Raises:
        WorkspaceError: If the file is missing or is not valid TOML (the
            message names the file).
    """
    given = Path(path)
    is_file = given.name == "pyproject.toml" and not given.is_dir()
    file = given if is_file else given / "pyproject.toml"
    return PackageConfig(load_toml(file), file.parent.resolve())


def _member_paths(cfg: Mapping[str, Any], root: Path) -> dict[str, Path]:
    """The `[tool.uv.workspace]` members of `cfg` by canonical project name."""
    workspace = cfg.get("tool", {}).get("uv", {}).get("workspace", {})
    members: dict[str, Path] = {}
    for directory in _member_dirs(root, workspace):
        name = load_toml(directory / "pyproject.toml").get("project", {}).get("name")
        if isinstance(name, str):
            members[canonicalize_name(name)] = directory
    return members


def get_local_dependencies(
    cfg: Mapping[str, Any], root: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The local packages among `[tool.uv.sources]`, in file order.

    Each entry is the source table with a `path` relative to the root, e.g.
    `{"macrostrat.utils": {"path": "utils", "editable": True}}`. A
    `workspace = true` source gets the member's directory
    (`{"path": "utils", "workspace": True}`). Sources of other kinds (git,
    url, index) and workspace sources that name no member are left out.

    Args:
        cfg: The root's parsed `pyproject.toml` (from `load_pkg_config`).
        root: The directory `cfg` was read from, to find workspace members.
            Defaults to the `directory` that `load_pkg_config` recorded;
            without either, `workspace = true` sources are left out.

    Returns:
        Source tables by package name, in the order of the file.

    Raises:
        WorkspaceError: If a workspace member's `pyproject.toml` is unreadable.
    """
    uv = cfg.get("tool", {}).get("uv", {})
    sources = uv.get("sources", {}) if isinstance(uv, Mapping) else {}
    base = Path(root) if root is not None else getattr(cfg, "directory", None)
    members: dict[str, Path] | None = None
    found: dict[str, dict[str, Any]] = {}
    for name, source in sources.items():
        for entry in source if isinstance(source, list) else [source]:
            if not isinstance(entry, Mapping):
                continue
            if "path" in entry:
                found[name] = dict(entry)
                break
            if entry.get("workspace") is True and base is not None:
                if members is None:
                    members = _member_paths(cfg, base.resolve())
                member = members.get(canonicalize_name(name))
                if member is not None:
                    relative = Path(os.path.relpath(member, base.resolve()))
                    found[name] = {"path": relative.as_posix(), "workspace": True}
                    break
        else:
            log.debug("source %r is not a local package; skipped", name)
    return found


def _project_field(cfg: Mapping[str, Any], field: str) -> str:
    project = cfg.get("project")
    value = project.get(field) if isinstance(project, Mapping) else None
    if not isinstance(value, str) or not value:
        where = getattr(cfg, "directory", None)
        place = f"{where / 'pyproject.toml'}" if where is not None else "pyproject.toml"
        raise WorkspaceError(f"{place} has no [project] {field}")
    return value
