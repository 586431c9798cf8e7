"""Read `pyproject.toml` files, and edit their version and dependencies in place.

Edits are minimal text substitutions (the `version = "..."` line of
`[project]` and dependency strings in `[project]` and
`[project.optional-dependencies]`), so comments and layout survive. Every
edit is verified by parsing the result again: if the parsed document differs
from the original in anything but the intended values, the edit is refused.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import VersioningError, WorkspaceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["edit_pyproject", "load_toml", "read_text"]

_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*(?P<name>[^\[\]#]+?)[ \t]*\]\]?[ \t]*(#.*)?$")
_PROJECT_TABLES = ("project", "project.optional-dependencies")


def read_text(path: Path) -> str:
    """Read a UTF-8 file without translating its line endings."""
    return path.read_bytes().decode("utf-8")


def load_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file.

    Args:
        path: The file.

    Returns:
        The parsed document.

    Raises:
        WorkspaceError: If the file is missing or is not valid TOML.
    """
    try:
        return tomllib.loads(read_text(path))
    except FileNotFoundError as exc:
        raise WorkspaceError(f"{path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path} is not valid TOML: {exc}") from exc


def _table_name(line: str) -> str | None:
    match = _HEADER.match(line.rstrip("\r\n"))
    if match is None:
        return None
    parts = [part.strip().strip("\"'") for part in match["name"].split(".")]
    return ".".join(parts)


def _project_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges of the `[project]` and `[project.optional-dependencies]` tables."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        name = _table_name(line)
        if name is not None:
            if start is not None:
                spans.append((start, offset))
                start = None
            if name in _PROJECT_TABLES:
                start = offset + len(line)
        offset += len(line)
    if start is not None:
        spans.append((start, len(text)))
    return spans


_VERSION_LINE = re.compile(
    r"^(?P<lead>[ \t]*version[ \t]*=[ \t]*)(?P<q>[\"'])(?P<value>[^\"'\r\n]*)(?P=q)",
    re.MULTILINE,
)


def _replace_in_spans(
    text: str, spans: list[tuple[int, int]], pattern: re.Pattern[str], repl: Any
) -> tuple[str, int]:
    pieces: list[str] = []
    last = 0
    total = 0
    for start, end in spans:
        new, count = pattern.subn(repl, text[start:end])
        pieces.append(text[last:start])
        pieces.append(new)
        last = end
        total += count
    pieces.append(text[last:])
    return "".join(pieces), total


def edit_pyproject(
    text: str,
    path: Path,
    *,
    version: str | None = None,
    requirements: Mapping[str, str] | None = None,
) -> str:
    """Return `text` with a new project version and replaced dependency strings.

    Only the `[project]` and `[project.optional-dependencies]` tables are
    touched. Each old requirement string must appear there literally (in
    double or single quotes); every occurrence is replaced.

    Args:
        text: The file's current content.
        path: The file's path, for error messages.
        version: The new `[project].version`, or `None` to keep it.
        requirements: Old requirement string → new requirement string.

    Returns:
        The edited text (equal to `text` if there was nothing to change).

    Raises:
        VersioningError: If a value can't be found, or the edited document
            does not parse to exactly the intended change.
    """
    requirements = dict(requirements or {})
    spans = _project_spans(text)
    new = text
    if version is not None:
        new, count = _replace_in_spans(
            new,
            spans,
            _VERSION_LINE,
            lambda m: f"{m['lead']}{m['q']}{version}{m['q']}",
        )
        if count != 1:
            raise VersioningError(
                f'{path}: expected one `version = "..."` line in [project], found {count}'
            )
        spans = _project_spans(new)
    for old, replacement in requirements.items():
        if old == replacement:
            continue
        pattern = re.compile(rf"(?P<q>[\"']){re.escape(old)}(?P=q)")
        new, count = _replace_in_spans(
            new, spans, pattern, lambda m, r=replacement: f"{m['q']}{r}{m['q']}"
        )
        if count == 0:
            raise VersioningError(
                f"{path}: can't find the dependency string {old!r} in [project]"
            )
        spans = _project_spans(new)
    _verify(text, new, path, version, requirements)
    return new


def _expected(
    document: dict[str, Any], version: str | None, requirements: Mapping[str, str]
) -> dict[str, Any]:
    expected = copy.deepcopy(document)
    project = expected.get("project", {})
    if version is not None:
        project["version"] = version
    lists = [project.get("dependencies", [])]
    lists.extend(project.get("optional-dependencies", {}).values())
    for deps in lists:
        deps[:] = [requirements.get(dep, dep) for dep in deps]
    return expected


def _verify(
    old: str,
    new: str,
    path: Path,
    version: str | None,
    requirements: Mapping[str, str],
) -> None:
    try:
        parsed = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - defensive
        raise VersioningError(f"{path}: the edit would break the TOML: {exc}") from exc
    if parsed != _expected(tomllib.loads(old), version, requirements):
        raise VersioningError(
            f"{path}: can't edit the file safely (its layout is unusual)",
            details="Make the change by hand, then run the command again.",
        )
