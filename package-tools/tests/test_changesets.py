"""Change fragments: writing, parsing, validation and `mono changeset`."""

from __future__ import annotations

from pathlib import Path

import pytest

from macrostrat.package_tools import (
    Bump,
    ChangeKind,
    Changeset,
    ChangesetError,
    WorkspaceError,
    load_changesets,
    load_workspace,
    parse_changeset,
    write_changeset,
)


def test_written_fragments_read_back(workspace: Path):
    ws = load_workspace(workspace)
    written = write_changeset(
        ws,
        {"acme.core": Bump.MINOR, "acme.db": None},
        ChangeKind.FIXED,
        "Fix the frobnicator.",
    )
    assert written.path is not None
    assert written.path.parent == ws.changes_dir
    assert written.path.name.startswith("fixed-fix-the-frobnicator-")
    assert written.packages == {"acme.core": Bump.MINOR, "acme.db": Bump.PATCH}
    assert load_changesets(ws) == [written]


def test_upstream_fragments_without_a_type_are_changes():
    changeset = parse_changeset(
        "---\nacme.core: minor\n'acme.db': patch\n---\n\nSomething.\n"
    )
    assert changeset.kind is ChangeKind.CHANGED
    assert changeset.packages == {"acme.core": Bump.MINOR, "acme.db": Bump.PATCH}
    assert changeset.entries() == ["Something."]


def test_bulleted_summaries_give_one_entry_each_and_breaking_is_marked():
    text = "---\ntype: breaking\nacme.core: major\n---\n- Drop `a`.\n- Rename `b`\n  to `c`.\n"
    assert parse_changeset(text).entries() == [
        "**Breaking:** Drop `a`.",
        "**Breaking:** Rename `b`\n  to `c`.",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter\n", "no front matter"),
        ("---\ntype: fixed\n---\nText\n", "names no package"),
        ("---\nacme.core: huge\n---\nText\n", "not a bump"),
        ("---\ntype: improved\nacme.core: patch\n---\nText\n", "unknown type"),
        ("---\nacme.core: patch\n---\n\n", "no description"),
        ("---\nacme.core: patch\nacme.core: minor\n---\nText\n", "listed twice"),
    ],
)
def test_malformed_fragments_are_rejected(text, message):
    with pytest.raises(ChangesetError, match=message):
        parse_changeset(text, Path("x.md"))


def test_fragments_naming_unknown_packages_are_rejected(workspace: Path):
    ws = load_workspace(workspace)
    ws.changes_dir.mkdir()
    (ws.changes_dir / "bad.md").write_text("---\nacme.nope: patch\n---\nText\n")
    (ws.changes_dir / "README.md").write_text("Not a fragment.\n")
    with pytest.raises(ChangesetError, match=r"bad\.md.*acme\.nope"):
        load_changesets(ws)


def test_breaking_changes_of_stable_packages_need_a_major_bump(workspace: Path):
    ws = load_workspace(workspace)
    with pytest.raises(ChangesetError, match="major"):
        write_changeset(ws, ["acme.core"], ChangeKind.BREAKING, "Drop it.", Bump.MINOR)
    # 0.x packages may break in a minor release
    written = write_changeset(
        ws, ["acme.app"], ChangeKind.BREAKING, "Drop it.", Bump.MINOR
    )
    assert written.packages == {"acme.app": Bump.MINOR}


def test_default_bumps_follow_the_kind():
    assert ChangeKind.FIXED.default_bump is Bump.PATCH
    assert ChangeKind.ADDED.default_bump is Bump.MINOR
    assert ChangeKind.REMOVED.default_bump is Bump.MAJOR
    assert ChangeKind.BREAKING.heading == "Changed"


def test_unknown_packages_and_empty_text_are_refused(workspace: Path):
    ws = load_workspace(workspace)
    with pytest.raises(WorkspaceError, match=r"acme\.nope"):
        write_changeset(ws, ["acme.nope"], ChangeKind.ADDED, "Text")
    with pytest.raises(ChangesetError):
        write_changeset(ws, ["acme.core"], ChangeKind.ADDED, "  ")
    with pytest.raises(ChangesetError):
        write_changeset(ws, [], ChangeKind.ADDED, "Text")


def test_cli_writes_a_fragment(workspace: Path, cli):
    result = cli(
        "changeset", "--path", workspace, "-p", "acme.core:major", "-p", "acme.db",
        "--type", "added", "-m", "A new `thing`.",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [path] = (workspace / ".changes").glob("*.md")
    assert str(path) in result.output
    changeset = parse_changeset(path.read_text())
    assert changeset == Changeset(
        ChangeKind.ADDED,
        {"acme.core": Bump.MAJOR, "acme.db": Bump.MINOR},
        "A new `thing`.",
    )


def test_cli_without_a_terminal_needs_every_option(workspace: Path, cli):
    result = cli("changeset", "--path", workspace, "-p", "acme.core")
    assert result.exit_code == 2
    assert "--message" in result.output
    assert not (workspace / ".changes").exists()


def test_cli_rejects_a_bad_bump_suffix(workspace: Path, cli):
    result = cli(
        "changeset",
        "--path",
        workspace,
        "-p",
        "acme.core:huge",
        "-t",
        "fixed",
        "-m",
        "x",
    )
    assert result.exit_code == 2
    assert "patch, minor or major" in result.output
