"""Change fragments: one small file per change, applied later by `mono version`.

A fragment lives in the workspace's `.changes/` directory (see
`WorkspaceConfig.changes_dir`) and looks like this:

```markdown
---
type: fixed
macrostrat.database: patch
macrostrat.utils: patch
---

`run_sql` reports the file name of a failing statement.
```

The front matter holds the change's `type` (added, changed, deprecated,
removed, fixed or breaking; `changed` if absent) and one `package: bump` line
per package concerned (bump is `patch`, `minor` or `major`). The body is the
CHANGELOG entry; a body made of `- ` items gives one entry per item. Fragments
written by upstream `mono` 2.1 (front matter of `package: bump` lines only)
are read as `changed`.
"""

from __future__ import annotations

import enum
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._pyproject import read_text
from .errors import ChangesetError, WorkspaceError
from .workspace import Bump, Workspace

__all__ = [
    "ChangeKind",
    "Changeset",
    "load_changesets",
    "parse_changeset",
    "write_changeset",
]

log = logging.getLogger(__name__)


class ChangeKind(str, enum.Enum):
    """The type of a change, as in Keep a Changelog (plus `breaking`)."""

    ADDED = "added"
    CHANGED = "changed"
    DEPRECATED = "deprecated"
    REMOVED = "removed"
    FIXED = "fixed"
    BREAKING = "breaking"

    @property
    def heading(self) -> str:
        """The CHANGELOG subsection it goes in (`breaking` goes in `Changed`)."""
        return "Changed" if self is ChangeKind.BREAKING else self.value.capitalize()

    @property
    def default_bump(self) -> Bump:
        """The bump used when none is given: major for breaking and removed
        changes, patch for fixes, minor otherwise."""
        if self in (ChangeKind.BREAKING, ChangeKind.REMOVED):
            return Bump.MAJOR
        return Bump.PATCH if self is ChangeKind.FIXED else Bump.MINOR


@dataclass(frozen=True)
class Changeset:
    """One change fragment.

    Attributes:
        kind: The type of change.
        packages: Package name → bump, as written in the fragment.
        summary: The CHANGELOG text (Markdown).
        path: The fragment's file, if it was read from or written to one.
    """

    kind: ChangeKind
    packages: Mapping[str, Bump]
    summary: str
    path: Path | None = field(default=None, compare=False)

    def entries(self) -> list[str]:
        """The CHANGELOG entries: one per `- ` item of the summary, or the whole
        summary as one entry. Breaking changes start with `**Breaking:**`."""
        items: list[list[str]] = []
        for line in self.summary.strip().splitlines():
            if re.match(r"[-*] ", line) or not items:
                items.append([re.sub(r"^[-*] ", "", line)])
            else:
                items[-1].append(line)
        texts = ["\n".join(lines).strip() for lines in items]
        if self.kind is ChangeKind.BREAKING:
            texts = [f"**Breaking:** {text}" for text in texts]
        return [text for text in texts if text]

    def render(self) -> str:
        """The fragment as file content."""
        lines = ["---", f"type: {self.kind.value}"]
        lines += [f"{name}: {bump.value}" for name, bump in self.packages.items()]
        return "\n".join([*lines, "---", "", self.summary.strip(), ""])


_FRONT = re.compile(
    r"\A---[ \t]*\r?\n(?P<front>.*?)^---[ \t]*\r?$\n?(?P<body>.*)\Z", re.S | re.M
)


def parse_changeset(text: str, path: Path | None = None) -> Changeset:
    """Parse a change fragment.

    Args:
        text: The fragment's content.
        path: Its file, for error messages and `Changeset.path`.

    Returns:
        The changeset.

    Raises:
        ChangesetError: If the front matter is missing or malformed, names no
            package, or uses an unknown type or bump.
    """
    where = str(path) if path else "change fragment"
    match = _FRONT.match(text)
    if match is None:
        raise ChangesetError(f"{where}: no front matter (a block between '---' lines)")
    kind = ChangeKind.CHANGED
    packages: dict[str, Bump] = {}
    for number, raw in enumerate(match["front"].splitlines(), start=2):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip().strip("\"'"), value.strip().strip("\"'")
        if not sep or not key or not value:
            raise ChangesetError(
                f"{where}, line {number}: expected 'name: value', got {raw!r}"
            )
        if value in {b.value for b in Bump}:
            if key in packages:
                raise ChangesetError(f"{where}: {key!r} is listed twice")
            packages[key] = Bump(value)
        elif key == "type":
            try:
                kind = ChangeKind(value)
            except ValueError:
                kinds = ", ".join(k.value for k in ChangeKind)
                raise ChangesetError(
                    f"{where}: unknown type {value!r} (one of {kinds})"
                ) from None
        else:
            raise ChangesetError(
                f"{where}, line {number}: {value!r} is not a bump (patch, minor or major)"
            )
    if not packages:
        raise ChangesetError(f"{where}: names no package")
    summary = match["body"].strip()
    if not summary:
        raise ChangesetError(f"{where}: has no description")
    return Changeset(kind=kind, packages=packages, summary=summary, path=path)


def _fragment_files(workspace: Workspace) -> list[Path]:
    directory = workspace.changes_dir
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.md") if p.name.lower() != "readme.md")


def load_changesets(workspace: Workspace) -> list[Changeset]:
    """Read every pending fragment of a workspace (`README.md` is ignored).

    Args:
        workspace: The workspace.

    Returns:
        The changesets, ordered by file name.

    Raises:
        ChangesetError: If a fragment is malformed or names a package that
            is not in the workspace.
    """
    changesets: list[Changeset] = []
    for path in _fragment_files(workspace):
        changeset = parse_changeset(read_text(path), path)
        for name in changeset.packages:
            try:
                workspace.get(name)
            except WorkspaceError as exc:
                raise ChangesetError(
                    f"{path}: {exc.message}", details=exc.details
                ) from exc
        changesets.append(changeset)
    return changesets


def _slug(summary: str) -> str:
    words = re.findall(r"[a-z0-9]+", summary.lower())[:6]
    return "-".join(words) or "change"


def write_changeset(
    workspace: Workspace,
    packages: Iterable[str] | Mapping[str, Bump | None],
    kind: ChangeKind,
    summary: str,
    bump: Bump | None = None,
) -> Changeset:
    """Write a new change fragment into the workspace's changes directory.

    Args:
        workspace: The workspace.
        packages: The packages concerned, or a mapping of package name to its
            own bump (`None` to use `bump`).
        kind: The type of change.
        summary: The CHANGELOG text.
        bump: The bump for packages without their own; defaults to
            `kind.default_bump`.

    Returns:
        The changeset written (its `path` is set).

    Raises:
        ChangesetError: If no package is given, the summary is empty, or a
            breaking change asks for less than a major bump of a 1.0+ package.
        WorkspaceError: If a package is not in the workspace.
    """
    wanted = packages if isinstance(packages, Mapping) else dict.fromkeys(packages)
    if not wanted:
        raise ChangesetError("a changeset needs at least one package")
    if not summary.strip():
        raise ChangesetError("a changeset needs a description")
    chosen: dict[str, Bump] = {}
    for name, own in wanted.items():
        package = workspace.get(name)
        level = own or bump or kind.default_bump
        if (
            kind is ChangeKind.BREAKING
            and package.version.major >= 1
            and level is not Bump.MAJOR
        ):
            raise ChangesetError(
                f"a breaking change to {package.name} {package.version} needs a major bump"
            )
        chosen[package.name] = level
    changeset = Changeset(kind=kind, packages=chosen, summary=summary.strip())
    directory = workspace.changes_dir
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind.value}-{_slug(summary)}-{secrets.token_hex(3)}.md"
    with path.open("x", encoding="utf-8", newline="\n") as handle:
        handle.write(changeset.render())
    log.info("Wrote %s", path)
    return Changeset(kind, chosen, changeset.summary, path)
