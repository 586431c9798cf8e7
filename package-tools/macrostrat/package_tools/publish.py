"""Publish the workspace's packages: in dependency order, skipping what is already there.

`plan_publish` decides, per package, whether to publish it: packages marked
`Private :: Do Not Upload` or without classifiers are never published (the
upstream rule), and versions whose wheel and sdist are both on the index
already are skipped. Unless told not to, it also asks the index for every
released version (`index_check.check_index`, as `mono status --check` does).
`publish_packages` then

1. refuses to start on a dirty working tree, when a release tag already
   points at another commit, or when the index check found a problem (a
   version below the newest on the index, an internal range met by a
   release that is not ours);
2. builds every package to publish and checks the wheels' metadata, before
   anything is uploaded; a version already on the index without our release
   tag is built too and must be byte for byte the files there (an earlier
   run that stopped before tagging; it gets its missing files and its tag),
   else nothing is uploaded;
3. uploads each package in dependency order with `uv publish --check-url`
   (so files already uploaded by an interrupted run are skipped) and tags it
   `<name>-v<version>` right after its upload succeeds;
4. stops at the first failure, and pushes the tags made so far only when
   asked (`push_tags`).

Running it again after a failure picks up where it stopped. Nothing in the
working tree is changed or committed.

About 480 lines: building, checking and uploading are one ordered procedure
with its all-or-nothing rules; the per-package decision lives in `_decision.py`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from macrostrat.utils import GitError, git_has_changes

from ._decision import Action, PublishItem, decide, upload_env_for
from ._git import head_commit, is_repository, tag_commit
from ._process import Command
from ._pyproject import read_text
from .build import Built, build_command, build_packages, check_wheels
from .changelog import find_section
from .errors import CommandError, PublishError
from .index import (
    DEFAULT_CHECK_URL,
    DEFAULT_INDEX_URL,
    DEFAULT_TIMEOUT,
)
from .index_check import IndexCheck, verify_files
from .index_check import check_index as run_index_check
from .legacy_publish import module_version_string as module_version_string
from .legacy_publish import modules_to_publish as modules_to_publish
from .legacy_publish import package_exists as package_exists
from .legacy_publish import prepare_module as prepare_module
from .legacy_publish import publish_module as publish_module
from .legacy_publish import publish_skip_classifier as publish_skip_classifier
from .workspace import Package, Workspace, load_workspace

__all__ = [
    "Action",
    "PublishItem",
    "PublishPlan",
    "PublishResult",
    "plan_publish",
    "publish_packages",
    "readiness_problems",
]

log = logging.getLogger(__name__)


@dataclass
class PublishPlan:
    """What `publish_packages` would do.

    Attributes:
        workspace: The workspace.
        items: One decision per selected package, in dependency order.
        out_dir: Where packages are built.
        check_url: The simple index asked for existing files.
        publish_url: The upload URL (`None`: uv's default, PyPI).
        push_tags: Whether to push the tags.
        remote: The git remote tags are pushed to.
        warnings: Things worth knowing that don't stop publishing.
        index: The index check (`None` when it was skipped).
    """

    workspace: Workspace
    items: list[PublishItem]
    out_dir: Path
    check_url: str = DEFAULT_CHECK_URL
    publish_url: str | None = None
    push_tags: bool = False
    remote: str = "origin"
    warnings: list[str] = field(default_factory=list)
    index: IndexCheck | None = None

    @property
    def to_publish(self) -> list[Package]:
        """The packages to upload, in dependency order."""
        return [i.package for i in self.items if i.action is Action.PUBLISH]

    @property
    def to_verify(self) -> list[Package]:
        """The packages whose version is on the index without our tag."""
        return [i.package for i in self.items if i.verify]

    @property
    def to_build(self) -> list[Package]:
        """The packages built: those to upload or to verify, in dependency order."""
        return [i.package for i in self.items if i.action is Action.PUBLISH or i.verify]

    def upload_command(self, files: Iterable[str | os.PathLike[str]]) -> Command:
        """The `uv publish` command for some files."""
        url = ["--publish-url", self.publish_url] if self.publish_url else []
        return Command.of(
            "uv",
            "publish",
            *url,
            "--check-url",
            self.check_url,
            *files,
            cwd=self.workspace.root,
        )

    def tag_command(self, package: Package) -> Command:
        """The `git tag` command for a package's release."""
        message = f"{package.name} version {package.version}"
        return Command.of(
            "git", "tag", "-a", package.tag, "-m", message, cwd=self.workspace.root
        )

    def push_command(self, tags: Iterable[str]) -> Command:
        """The `git push` command for some tags (only those, never `--tags`)."""
        refs = [f"refs/tags/{tag}" for tag in tags]
        return Command.of("git", "push", self.remote, *refs, cwd=self.workspace.root)

    def commands(self) -> list[Command]:
        """Every command `publish_packages` would run, in order (for a dry run).

        Upload commands name the files as globs, since they don't exist yet.
        """
        packages = self.to_publish
        steps = [build_command(self.workspace, p, self.out_dir) for p in self.to_build]
        for package in packages:
            stem = f"{package.key.replace('-', '_')}-{package.version}"
            files = [self.out_dir / f"{stem}.tar.gz", self.out_dir / f"{stem}-*.whl"]
            steps.append(self.upload_command(files))
            steps.append(self.tag_command(package))
        if self.push_tags and packages:
            steps.append(self.push_command(p.tag for p in packages))
        return steps


@dataclass
class PublishResult:
    """What `publish_packages` did.

    Attributes:
        published: The packages uploaded.
        tags: The tags created.
        pushed: The tags pushed.
    """

    published: list[Package] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)


def plan_publish(
    workspace: Workspace,
    *,
    out_dir: str | os.PathLike[str],
    omit: Iterable[str] = (),
    check_url: str | None = None,
    publish_url: str | None = None,
    push_tags: bool = False,
    remote: str = "origin",
    timeout: float = DEFAULT_TIMEOUT,
    index_url: str | None = None,
    check_index: bool = True,
) -> PublishPlan:
    """Decide what to publish (asks the index; changes nothing).

    Private packages and packages without classifiers are decided without
    asking the index.

    Args:
        workspace: The workspace.
        out_dir: Where packages will be built.
        omit: Package names to leave out.
        check_url: The simple index to ask for existing files. Defaults to
            PyPI's; required when `publish_url` is given.
        publish_url: The upload URL; `None` for uv's default (PyPI).
        push_tags: Whether `publish_packages` pushes the tags it makes.
        remote: The git remote to push tags to.
        timeout: Seconds to wait for each index request.
        index_url: The JSON API asked for released versions (see
            `index_check`). Default: PyPI's, or the simple index `check_url`
            when that is given.
        check_index: Whether to ask the index for released versions at all.

    Returns:
        The plan (`plan.index` holds the index check).

    Raises:
        PublishError: If `publish_url` is given without `check_url`.
        IndexQueryError: If the index can't be asked (error or timeout).
    """
    if publish_url and not check_url:
        raise PublishError(
            "--publish-url needs --check-url",
            details="Give the simple index URL of the index you upload to, "
            "so versions already there are skipped.",
        )
    if not check_index:
        index, simple = None, False
    elif index_url:
        index, simple = index_url, False
    elif check_url:
        index, simple = check_url, True
    else:
        index, simple = DEFAULT_INDEX_URL, False
    check_url = check_url or DEFAULT_CHECK_URL
    items = [decide(p, check_url, timeout) for p in workspace.select(omit)]
    check = None
    if index is not None:
        check = run_index_check(
            workspace,
            [
                i.package
                for i in items
                if i.action in (Action.PUBLISH, Action.PUBLISHED)
            ],
            index_url=index,
            simple=simple,
            timeout=timeout,
        )
        taken = {p.key for p in check.taken}
        items = [_verified(i, check) if i.package.key in taken else i for i in items]
    plan = PublishPlan(
        workspace,
        items,
        Path(out_dir).resolve(),
        check_url,
        publish_url,
        push_tags,
        remote,
        index=check,
    )
    skipped = {
        i.package.key
        for i in items
        if i.action in (Action.PRIVATE, Action.NO_CLASSIFIERS)
    }
    for item in items:
        package = item.package
        if item.action is Action.PUBLISH:
            if package.changelog.exists():
                section = find_section(read_text(package.changelog), package.version)
                if section is not None and section.unreleased:
                    plan.warnings.append(
                        f"{package.name} {package.version}: its CHANGELOG section still says "
                        "Unreleased (run `mono version` to date it)"
                    )
            for dep in package.dependencies:
                if dep.name in skipped:
                    plan.warnings.append(
                        f"{package.name} depends on {workspace.packages[dep.name].name}, "
                        "which is never published"
                    )
        elif (
            item.action is Action.PUBLISHED
            and not item.verify
            and is_repository(workspace.root)
            and tag_commit(workspace.root, package.tag) is None
        ):
            plan.warnings.append(
                f"{package.name} {package.version} is on the index but has no tag {package.tag}"
            )
    return plan


def _verified(item: PublishItem, check: IndexCheck) -> PublishItem:
    """The item of a package whose version is on the index without our tag."""
    package = item.package
    reason = (
        f"on {check.url} without the tag {package.tag}: built and compared with "
        "the files there before anything is uploaded"
    )
    return PublishItem(package, item.action, reason, item.existing, verify=True)


def readiness_problems(plan: PublishPlan) -> list[str]:
    """Why `publish_packages` would refuse to start (empty when it can go ahead).

    Publishing needs no problem from the index check (a version below the
    newest on the index, an internal range met by a release that is not
    ours), a git repository with a commit (for the tags), no uncommitted
    changes or untracked files (so the tag names what was built), and no
    release tag already pointing at another commit.
    """
    root = plan.workspace.root
    problems = list(plan.index.problems) if plan.index is not None else []
    if not plan.to_publish and not plan.to_verify:
        return problems
    if not is_repository(root):
        return [
            *problems,
            f"{root} is not in a git repository (needed for release tags)",
        ]
    try:
        head = head_commit(root)
        dirty = git_has_changes(root)
    except (CommandError, GitError) as exc:
        return [*problems, f"can't read the git state of {root}: {exc}"]
    if dirty:
        problems.append(
            f"{root} has uncommitted changes or untracked files; commit or remove them first"
        )
    for package in plan.to_publish:
        tagged = tag_commit(root, package.tag)
        if tagged is not None and tagged != head:
            problems.append(
                f"tag {package.tag} already exists on another commit ({tagged[:12]})"
            )
    return problems


def publish_packages(
    plan: PublishPlan | Workspace | str | os.PathLike[str] | None = None,
    omit: Iterable[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> PublishResult:
    """Carry out a publish plan (see the module description for the steps).

    Upstream's form `publish_packages(path=Path.cwd(), omit=[])` works too: a
    workspace root (or a `Workspace`, or nothing for the workspace around the
    current directory) is planned with `plan_publish(..., omit=omit)` and
    built in a temporary directory. It is published to PyPI, or to uv's
    `UV_PUBLISH_URL` checked against `UV_PUBLISH_CHECK_URL` when those are set
    in `env`.

    Args:
        plan: The plan from `plan_publish`; or a workspace root or
            `Workspace` to plan now.
        omit: Package names to leave out when planning here (give them to
            `plan_publish` when passing a plan).
        env: The environment for `uv publish` (credentials: `UV_PUBLISH_TOKEN`,
            or `UV_PUBLISH_USERNAME`/`UV_PUBLISH_PASSWORD`, or trusted
            publishing); defaults to this process's environment. A password
            without a user name is sent as a token (user `__token__`).
        path: Upstream's name for the workspace root (deprecated; warns).

    Returns:
        What was published, tagged and pushed.

    Raises:
        PublishError: If the working tree or the tags are not ready (nothing
            has been done).
        CommandError: If a build, upload, tag or push fails (names the
            command; packages uploaded before it stay uploaded and tagged).
        MetadataCheckError: If a built wheel lacks internal dependency floors
            (nothing has been uploaded).
        IndexQueryError: When planning here, if the index can't be asked.
        TypeError: If both `plan` and `path` are given, or `omit` with a plan.
    """
    if path is not None:
        if plan is not None:
            raise TypeError("publish_packages() got both 'plan' and 'path'")
        warnings.warn(
            "publish_packages(path=...) is deprecated; pass the workspace root "
            "(or a plan from plan_publish) as the first argument",
            DeprecationWarning,
            stacklevel=2,
        )
        plan = path
    if isinstance(plan, PublishPlan):
        if list(omit):
            raise TypeError(
                "publish_packages(plan, omit=...): give omit to plan_publish instead"
            )
        return _publish(plan, env)
    workspace = plan if isinstance(plan, Workspace) else load_workspace(plan)
    settings = os.environ if env is None else env
    skip_index = settings.get("MONO_NO_INDEX_CHECK", "").strip().lower()
    with tempfile.TemporaryDirectory(prefix="mono-publish-") as out_dir:
        planned = plan_publish(
            workspace,
            out_dir=out_dir,
            omit=omit,
            check_url=settings.get("UV_PUBLISH_CHECK_URL") or None,
            publish_url=settings.get("UV_PUBLISH_URL") or None,
            index_url=settings.get("MONO_INDEX_URL") or None,
            check_index=skip_index not in ("1", "true", "yes", "on"),
        )
        for warning in planned.warnings:
            log.warning("%s", warning)
        return _publish(planned, env)


def _verify(plan: PublishPlan, built: Iterable[Built]) -> None:
    """Refuse (before any upload) versions on the index that are not ours."""
    if plan.index is None:
        return
    verify = {p.key for p in plan.to_verify}
    problems = []
    for item in built:
        package = item.package
        if package.key not in verify:
            continue
        files = plan.index.packages[package.key].releases[package.version]
        differences = verify_files(files, item.files)
        if differences or not files:
            problems.append(plan.index.taken_message(package))
            problems += [f"  {line}" for line in differences]
        else:
            log.info(
                "%s %s on the index is ours (its files are the ones built here)",
                package.name,
                package.version,
            )
    if problems:
        raise PublishError(
            "versions already on the index are not ours; nothing was uploaded",
            details="\n".join(problems),
        )


def _publish(plan: PublishPlan, env: Mapping[str, str] | None) -> PublishResult:
    problems = readiness_problems(plan)
    if problems:
        raise PublishError("not ready to publish", details="\n".join(problems))
    result = PublishResult()
    packages = plan.to_publish
    if not packages and not plan.to_verify:
        log.info("Nothing to publish")
        return result
    built = build_packages(plan.workspace, plan.to_build, plan.out_dir)
    check_wheels(plan.workspace, built)
    _verify(plan, built)
    root = plan.workspace.root
    upload_env = upload_env_for(env)
    done: list[str] = []
    failed = False
    try:
        for item in built:
            package = item.package
            if package in packages:
                log.info("Uploading %s %s", package.name, package.version)
                plan.upload_command(item.files).run(env=upload_env)
                result.published.append(package)
            # a verified version of ours already complete on the index only
            # lacks its tag (an earlier run stopped right after the upload)
            if tag_commit(root, package.tag) is None:
                plan.tag_command(package).run()
                result.tags.append(package.tag)
                log.info("Tagged %s", package.tag)
            done.append(package.tag)
    except BaseException:
        failed = True
        raise
    finally:
        if plan.push_tags and done:
            try:
                plan.push_command(done).run()
                result.pushed.extend(done)
                log.info("Pushed %s to %s", ", ".join(done), plan.remote)
            except CommandError:
                if not failed:
                    raise
                log.exception(
                    "could not push the tags of the packages published so far"
                )
    return result
