"""Upstream `mono` 2.0's per-directory publish steps, kept for scripts that call them.

Importable from `macrostrat.package_tools.publish` (their upstream path).
Each takes a package directory (or its parsed `pyproject.toml`) instead of a
[`Workspace`][macrostrat.package_tools.workspace.Workspace], and keeps `mono`'s safety
rules:

- every `uv` and `git` command's exit status is checked (`CommandError`);
- the index is asked through its simple API with a timeout, private
  packages and packages without classifiers are not looked up, and an index
  error is an error rather than "not published";
- `publish_module` uploads only the current version's files, refuses a
  working tree with uncommitted changes or untracked files, checks the
  wheel's internal dependency floors when the package belongs to a
  workspace, and does not commit anything (upstream's `publish_packages` ran
  `git add .` and committed).

New code should use
[`plan_publish`][macrostrat.package_tools.publish.plan_publish] and
[`publish_packages`][macrostrat.package_tools.publish.publish_packages].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from macrostrat.utils import GitError, git_has_changes

from ._decision import Action, decide, upload_env_for
from ._git import head_commit, is_repository, tag_commit
from ._process import Command
from .build import Built, check_wheels, find_artifacts
from .dependencies import _project_field, load_pkg_config
from .errors import CommandError, PublishError, WorkspaceError
from .index import DEFAULT_CHECK_URL, DEFAULT_TIMEOUT
from .workspace import PRIVATE_CLASSIFIER, Package, find_workspace_root, load_workspace

__all__ = [
    "module_version_string",
    "modules_to_publish",
    "package_exists",
    "prepare_module",
    "publish_module",
    "publish_skip_classifier",
]

log = logging.getLogger(__name__)

publish_skip_classifier = PRIVATE_CLASSIFIER
"""Upstream's name of the classifier that keeps a package from being published."""


def _config(pkg: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    return pkg if isinstance(pkg, Mapping) else load_pkg_config(pkg)


def _package(cfg: Mapping[str, Any]) -> Package:
    """A `Package` from a parsed `pyproject.toml` (for the index decision)."""
    name = _project_field(cfg, "name")
    text = _project_field(cfg, "version")
    try:
        version = Version(text)
    except InvalidVersion as exc:
        raise WorkspaceError(f"{name}: invalid version {text!r}") from exc
    classifiers = cfg.get("project", {}).get("classifiers", ())
    directory = getattr(cfg, "directory", None) or Path.cwd()
    return Package(name, version, Path(directory), tuple(classifiers))


def module_version_string(fp: str | os.PathLike[str], long: bool = False) -> str:
    """The release name of the package in a directory.

    Args:
        fp: The package directory (relative paths are taken from the
            current directory when called).
        long: Return `"<name> version <version>"` (the tag message) instead
            of the tag `"<name>-v<version>"`.

    Raises:
        WorkspaceError: If its `pyproject.toml` is missing or has no
            `[project]` name or version.
    """
    cfg = load_pkg_config(fp)
    name, version = _project_field(cfg, "name"), _project_field(cfg, "version")
    return f"{name} version {version}" if long else f"{name}-v{version}"


def package_exists(
    pkg: Mapping[str, Any] | str | os.PathLike[str],
    *,
    check_url: str = DEFAULT_CHECK_URL,
    timeout: float = DEFAULT_TIMEOUT,
) -> bool:
    """Whether publishing should skip a package (upstream's name for the test).

    True for a package marked `Private :: Do Not Upload`, one without
    classifiers (neither is looked up on the index), and a version whose
    wheel and sdist are both on the index. A version with only some of its
    files there is False: publishing uploads the rest. The decision is
    logged.

    Args:
        pkg: The parsed `pyproject.toml` (from `load_pkg_config`), or the
            package directory.
        check_url: The simple index to ask (default PyPI's).
        timeout: Seconds to wait for the index.

    Raises:
        IndexQueryError: If the index can't be asked (error or timeout);
            upstream took any failure to mean "not published".
    """
    package = _package(_config(pkg))
    item = decide(package, check_url, timeout)
    log.info("%s (%s): %s", package.name, package.version, item.reason)
    return item.action is not Action.PUBLISH


def modules_to_publish(
    modules: Iterable[str | os.PathLike[str]], omit: Iterable[str] = (), **kwargs: Any
) -> list[str | os.PathLike[str]]:
    """The package directories that need publishing (see `package_exists`).

    Args:
        modules: Package directories.
        omit: Package names (any spelling) or directory names to leave out;
            upstream ignored this argument.
        **kwargs: Passed to `package_exists` (`check_url`, `timeout`).

    Returns:
        The directories to publish, in the order given.
    """
    omitted = set(omit)
    omitted_names = {canonicalize_name(name) for name in omitted}
    selected: list[str | os.PathLike[str]] = []
    for module in modules:
        cfg = load_pkg_config(module)
        name = _project_field(cfg, "name")
        if Path(module).name in omitted or canonicalize_name(name) in omitted_names:
            log.info("%s: omitted", name)
            continue
        if not package_exists(cfg, **kwargs):
            selected.append(module)
    return selected


def prepare_module(fp: str | os.PathLike[str]) -> list[Command]:
    """Lock and build the package in a directory (upstream's first step).

    Runs `uv lock`, then `uv build --no-sources --clear --out-dir <fp>/dist`
    in `fp`, each checked. `--no-sources` builds against the published
    metadata, as `mono build` does; `--clear` empties `<fp>/dist` first.

    Args:
        fp: The package directory.

    Returns:
        The commands run.

    Raises:
        CommandError: If a command fails (names the command).
    """
    directory = Path(fp).resolve()
    commands = [
        Command.of("uv", "lock", cwd=directory),
        Command.of(
            "uv",
            "build",
            "--no-sources",
            "--clear",
            "--out-dir",
            directory / "dist",
            directory,
            cwd=directory,
        ),
    ]
    for command in commands:
        log.info("Running %s (in %s)", command, command.cwd)
        command.run()
    return commands


def _workspace_check(package: Package, built: Built) -> None:
    """Check the wheel's internal dependency floors if the package is in a workspace."""
    try:
        workspace = load_workspace(find_workspace_root(package.path.parent))
    except WorkspaceError:
        return
    member = workspace.packages.get(package.key)
    if member is None or member.path != package.path:
        return
    check_wheels(workspace, [Built(member, built.wheel, built.sdist)])


def _upload_command(
    files: Sequence[Path],
    directory: Path,
    check_url: str | None,
    publish_url: str | None,
    env: Mapping[str, str],
) -> Command:
    args: list[str | os.PathLike[str]] = ["uv", "publish"]
    if publish_url:
        args += ["--publish-url", publish_url]
    if check_url is None and not (publish_url or env.get("UV_PUBLISH_URL")):
        check_url = DEFAULT_CHECK_URL
    if check_url:
        args += ["--check-url", check_url]
    return Command.of(*args, *files, cwd=directory)


def publish_module(
    fp: str | os.PathLike[str],
    *,
    check_url: str | None = None,
    publish_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Upload the package built in `<fp>/dist` and tag the release.

    Uploads the current version's wheel and sdist from `<fp>/dist` (see
    `prepare_module`) with `uv publish --check-url` (files already on the
    index are skipped), then tags `<name>-v<version>` with the message
    `<name> version <version>` unless that tag already points at `HEAD`.
    Credentials as for `publish_packages` (a password without a user name is
    sent as a token). Tags are not pushed.

    Args:
        fp: The package directory.
        check_url: The simple index to check for existing files (default
            PyPI's; none when uploading elsewhere without one).
        publish_url: The upload URL (default: uv's, PyPI).
        env: The environment for `uv publish` (default: this process's).

    Returns:
        The tag.

    Raises:
        PublishError: Nothing was built for this version, the directory is
            not in a git repository with a commit, the working tree has
            uncommitted changes or untracked files, or the tag exists on
            another commit (nothing is uploaded).
        MetadataCheckError: The wheel lacks internal dependency floors.
        CommandError: `uv publish` or `git tag` failed (names the command).
    """

    directory = Path(fp).resolve()
    package = _package(load_pkg_config(directory))
    wheel, sdist = find_artifacts(package, directory / "dist")
    if wheel is None:
        raise PublishError(
            f"no wheel of {package.name} {package.version} in {directory / 'dist'}",
            details="Build it first, e.g. with prepare_module(fp).",
        )
    built = Built(package, wheel, sdist)
    if not is_repository(directory):
        raise PublishError(f"{directory} is not in a git repository (needed for tags)")
    try:
        head = head_commit(directory)
        dirty = git_has_changes(directory)
    except (CommandError, GitError) as exc:
        raise PublishError(f"can't read the git state of {directory}: {exc}") from exc
    if dirty:
        raise PublishError(
            f"{directory} has uncommitted changes or untracked files; "
            "commit or remove them first"
        )
    tagged = tag_commit(directory, package.tag)
    if tagged is not None and tagged != head:
        raise PublishError(
            f"tag {package.tag} already exists on another commit ({tagged[:12]})"
        )
    _workspace_check(package, built)
    upload_env = upload_env_for(env)
    upload = _upload_command(built.files, directory, check_url, publish_url, upload_env)
    log.info("Uploading %s %s", package.name, package.version)
    upload.run(env=upload_env)
    if tagged is None:
        message = f"{package.name} version {package.version}"
        Command.of("git", "tag", "-a", package.tag, "-m", message, cwd=directory).run()
        log.info("Tagged %s", package.tag)
    return package.tag
