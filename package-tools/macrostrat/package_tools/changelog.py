"""Read and write `CHANGELOG.md` files in Keep a Changelog form.

A version's section starts with `## [1.4.0] - 2025-06-01`. A section whose
label is `Unreleased` (`## [1.4.0] - Unreleased`) is the entry for a version
that has been chosen but not yet cut by `mono version`: it counts as the
version's CHANGELOG entry, and `mono version` adds to it (and dates it)
rather than bumping the version again. A version-less `## [Unreleased]`
section is left where it is; new sections go below it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

__all__ = ["HEADINGS", "Section", "find_section", "update_changelog"]

HEADINGS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
"""Keep a Changelog subsection headings, in the order they are written."""

_SECTION = re.compile(
    r"^## \[(?P<version>[^\]]+)\][ \t]*(?:-[ \t]*(?P<label>[^\r\n]*?))?[ \t]*\r?$", re.M
)
_SUBSECTION = re.compile(r"^### (?P<heading>[^\r\n]+?)[ \t]*\r?$", re.M)

_HEADER = """# Changelog

All notable changes to `{name}` are documented here. The format
follows [Keep a Changelog](https://keepachangelog.com/en/1.1.0/), and the
project uses [Semantic Versioning](https://semver.org/).
"""


@dataclass(frozen=True)
class Section:
    """One `## [version]` section of a changelog.

    Attributes:
        version: The version in the heading (as written).
        label: The text after the dash: a date, `Unreleased`, or `None`.
        start: Offset of the heading in the text.
        end: Offset where the next `## ` section (or the text) ends.
        body: The text between the heading line and `end`.
    """

    version: str
    label: str | None
    start: int
    end: int
    body: str

    @property
    def unreleased(self) -> bool:
        """Whether the label is `Unreleased` (any case)."""
        return (self.label or "").strip().lower() == "unreleased"

    @property
    def has_entries(self) -> bool:
        """Whether the section lists at least one `- ` item."""
        return re.search(r"^[ \t]*[-*] \S", self.body, re.M) is not None


def _sections(text: str) -> list[Section]:
    matches = list(_SECTION.finditer(text))
    sections = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end]
        sections.append(
            Section(match["version"].strip(), match["label"], match.start(), end, body)
        )
    return sections


def _same_version(written: str, version: Version) -> bool:
    try:
        return Version(written) == version
    except InvalidVersion:
        return False


def find_section(text: str, version: Version) -> Section | None:
    """Return the section for `version` (compared as versions), or `None`."""
    return next((s for s in _sections(text) if _same_version(s.version, version)), None)


def _bullet(entry: str) -> str:
    first, *rest = entry.strip().splitlines() or [""]
    lines = [f"- {first}"] + [
        f"  {line.strip()}" if line.strip() else "" for line in rest
    ]
    return "\n".join(lines)


def _rank(heading: str) -> int:
    """The Keep a Changelog position of a heading (`Changed (security)` ranks as Changed)."""
    word = heading.split()[0].strip(":").capitalize() if heading.split() else ""
    return HEADINGS.index(word) if word in HEADINGS else len(HEADINGS)


def _merge(body: str, entries: Sequence[tuple[str, str]], newline: str) -> str:
    """Add `(heading, entry)` pairs to a section body, keeping what is there."""
    parts = list(_SUBSECTION.finditer(body))
    preamble = (body[: parts[0].start()] if parts else body).strip("\r\n")
    blocks: dict[str, list[str]] = {}
    for index, match in enumerate(parts):
        end = parts[index + 1].start() if index + 1 < len(parts) else len(body)
        content = body[match.end() : end].strip("\r\n")
        blocks.setdefault(match["heading"], []).append(content)
    order = list(blocks)  # the headings already there keep their order
    for heading, entry in entries:
        if heading not in blocks:
            # before the first heading there of the same kind or a later one
            # (`### Changed` goes before `### Changed (security)` and `### Fixed`)
            rank = _rank(heading)
            at = next((i for i, h in enumerate(order) if _rank(h) >= rank), len(order))
            order.insert(at, heading)
        blocks.setdefault(heading, []).append(_bullet(entry))
    out = [preamble] if preamble else []
    for heading in order:
        content = "\n".join(c.strip("\r\n") for c in blocks[heading] if c.strip())
        out.append(f"### {heading}\n\n{content}")
    text = "\n\n".join(out)
    return newline + newline + text.replace("\n", newline) + newline + newline


def update_changelog(
    text: str | None,
    name: str,
    *,
    current: Version,
    new: Version,
    entries: Sequence[tuple[str, str]],
    date: str,
) -> str:
    """Return the changelog with the section for a new version.

    If the current version's section is `Unreleased`, the entries are added
    to it and it becomes `## [new] - date`. Otherwise a new section is
    written above the newest version's section (below a version-less
    `## [Unreleased]` section, if any). Entries are grouped under `###`
    headings in Keep a Changelog order.

    Args:
        text: The current changelog, or `None` to start one.
        name: The package name, for a new changelog's introduction.
        current: The package's version before the change.
        new: Its version after (may equal `current`).
        entries: `(heading, Markdown text)` pairs, e.g. `("Fixed", "...")`.
        date: The date for the heading, e.g. `2025-06-01`.

    Returns:
        The new changelog text.
    """
    if text is None:
        text = _HEADER.format(name=name)
    newline = "\r\n" if "\r\n" in text else "\n"
    heading = f"## [{new}] - {date}"
    pending = find_section(text, current)
    if pending is not None and pending.unreleased:
        body = _merge(pending.body, entries, newline)
        tail = text[pending.end :]
        if not tail:
            body = body.rstrip("\r\n") + newline
        return text[: pending.start] + heading + body + tail
    section = heading + _merge("", entries, newline)
    after = [s for s in _sections(text) if s.version.strip().lower() != "unreleased"]
    if after:
        at = after[0].start
        return text[:at] + section + text[at:]
    return text.rstrip("\r\n") + newline + newline + section.rstrip("\r\n") + newline
