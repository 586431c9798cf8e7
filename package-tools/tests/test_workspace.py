"""Discovery: members globs, the legacy [tool.uv.sources] path table, order, errors."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from packaging.version import Version

from macrostrat.package_tools import (
    Bump,
    WorkspaceError,
    find_workspace_root,
    load_workspace,
)


def test_members_are_found_with_versions_and_internal_dependencies(workspace: Path):
    ws = load_workspace(workspace)
    assert ws.root == workspace.resolve()
    assert [p.name for p in ws.packages.values()] == [
        "acme.core",
        "acme.db",
        "acme.app",
    ]
    app = ws.get("ACME_App")  # any spelling that canonicalizes the same
    assert app.version == Version("0.3.0")
    assert app.path == workspace / "packages" / "app"
    assert [(d.name, d.requirement) for d in app.dependencies] == [
        ("acme-db", "acme.db>=2.1.0"),
        ("acme-core", "acme.core>=1.0.0,<2"),
    ]
    assert app.tag == "acme.app-v0.3.0"
    assert not app.private
    assert app.classifiers


def test_dependency_order_puts_dependencies_first_whatever_the_folder_names(workspaces):
    root = workspaces.make(
        [
            ("zeta.base", "a-last", "1.0.0", []),
            ("alpha.top", "z-first", "1.0.0", ["zeta.base>=1.0.0"]),
        ],
        lock=False,
        commit=False,
    )
    assert list(load_workspace(root).packages) == ["zeta-base", "alpha-top"]


def test_optional_dependencies_count_as_internal_dependencies(workspaces):
    root = workspaces.make(
        [("acme.core", "core", "1.0.0", [])], lock=False, commit=False
    )
    workspaces.add_package(
        root,
        "acme.cli",
        "cli",
        "1.0.0",
        [],
        extra='[project.optional-dependencies]\ndb = ["acme.core>=1.0.0"]\n',
    )
    cli = load_workspace(root).get("acme.cli")
    assert [(d.name, d.extra) for d in cli.dependencies] == [("acme-core", "db")]


def test_exclude_globs_are_honoured(workspaces):
    root = workspaces.make(lock=False, commit=False)
    text = (root / "pyproject.toml").read_text()
    text = text.replace(
        'members = ["packages/*"]',
        'members = ["packages/*"]\nexclude = ["packages/app"]',
    )
    (root / "pyproject.toml").write_text(text)
    assert "acme-app" not in load_workspace(root).packages


def test_legacy_sources_table_skips_non_path_sources_instead_of_key_error(
    tmp_path: Path, make_pyproject
):
    # mono 2.0 read [tool.uv.sources] and assumed every entry had a `path`
    # (KeyError: 'path' for a git source, KeyError: 'sources' without the table).
    root = tmp_path / "legacy"
    for folder, name in (("libs/one", "one"), ("libs/two", "two")):
        (root / folder).mkdir(parents=True)
        (root / folder / "pyproject.toml").write_text(make_pyproject(name, "1.0.0", []))
    (root / "pyproject.toml").write_text(
        dedent(
            """\
            [project]
            name = "legacy-root"
            version = "0"

            [tool.uv.sources]
            one = { path = "libs/one", editable = true }
            two = [{ path = "libs/two", marker = "sys_platform == 'linux'" }]
            remote = { git = "https://example.invalid/remote.git" }
            sibling = { workspace = true }
            gone = { path = "libs/missing" }
            """
        )
    )
    ws = load_workspace(root)
    assert list(ws.packages) == ["one", "two"]
    assert not ws.get("one").member


def test_a_root_without_packages_is_a_clear_error(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "lonely"\nversion = "1"\n'
    )
    with pytest.raises(WorkspaceError, match="defines no packages"):
        load_workspace(tmp_path)


def test_a_missing_pyproject_is_a_clear_error(tmp_path: Path):
    with pytest.raises(WorkspaceError, match="does not exist"):
        load_workspace(tmp_path)


def test_dynamic_versions_are_refused(workspaces):
    root = workspaces.make(lock=False, commit=False)
    pyproject = root / "packages" / "core" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('version = "1.0.0"', 'dynamic = ["version"]')
    )
    with pytest.raises(WorkspaceError, match="no static"):
        load_workspace(root)


def test_dependency_cycles_are_refused(workspaces):
    root = workspaces.make(
        [
            ("a.one", "one", "1.0.0", ["a.two>=1.0.0"]),
            ("a.two", "two", "1.0.0", ["a.one>=1.0.0"]),
        ],
        lock=False,
        commit=False,
    )
    with pytest.raises(WorkspaceError, match="cycle"):
        load_workspace(root)


def test_root_is_found_from_a_member_directory(workspace: Path, monkeypatch):
    monkeypatch.chdir(workspace / "packages" / "db" / "acme")
    assert find_workspace_root() == workspace.resolve()
    assert load_workspace().root == workspace.resolve()


def test_tool_mono_settings(workspaces):
    root = workspaces.make(
        root_extra='\n[tool.mono]\nchanges-dir = "changes"\nupdate-internal-dependencies = "minor"\nprivate = ["Acme.App"]\n',
        lock=False,
        commit=False,
    )
    ws = load_workspace(root)
    assert ws.changes_dir == root.resolve() / "changes"
    assert ws.config.update_internal_dependencies is Bump.MINOR
    assert ws.config.private == {"acme-app"}


@pytest.mark.parametrize(
    "table", ["typo = 1", 'update-internal-dependencies = "major"']
)
def test_bad_tool_mono_settings_are_errors(workspaces, table):
    root = workspaces.make(
        root_extra=f"\n[tool.mono]\n{table}\n", lock=False, commit=False
    )
    with pytest.raises(WorkspaceError, match=r"\[tool.mono\]"):
        load_workspace(root)


def test_omitting_an_unknown_package_is_logged_not_fatal(workspace: Path, caplog):
    ws = load_workspace(workspace)
    assert [p.name for p in ws.select(["acme.db", "nope"])] == ["acme.core", "acme.app"]
    assert "--omit nope" in caplog.text


def test_path_default_is_read_when_the_command_runs(workspace: Path, monkeypatch, cli):
    # mono 2.0 evaluated `--path` defaults (Path.cwd()) at import time, i.e.
    # here in the repository checkout where pytest started.
    monkeypatch.chdir(workspace)
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert "acme.core" in result.output
    assert "macrostrat" not in result.output
