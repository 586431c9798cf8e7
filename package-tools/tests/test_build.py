"""`mono build` and the check of internal `Requires-Dist` floors in built wheels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from macrostrat.package_tools import (
    MetadataCheckError,
    build_packages,
    check_wheels,
    load_workspace,
    wheel_problems,
)


def test_build_writes_sdists_and_wheels_and_checks_them(workspace: Path, cli):
    result = cli("build", "--path", workspace)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (workspace / "dist").glob("acme_*"))
    assert names == [
        "acme_app-0.3.0-py3-none-any.whl",
        "acme_app-0.3.0.tar.gz",
        "acme_core-1.0.0-py3-none-any.whl",
        "acme_core-1.0.0.tar.gz",
        "acme_db-2.1.0-py3-none-any.whl",
        "acme_db-2.1.0.tar.gz",
    ]
    assert "internal dependency floors ok" in result.output


def test_relative_paths_work(workspace: Path, monkeypatch, cli):
    monkeypatch.chdir(workspace.parent)
    result = cli(
        "build", "--path", workspace.name, "--out-dir", "out", "--omit", "acme.app"
    )
    assert result.exit_code == 0, result.output
    assert len(list((workspace.parent / "out").glob("*.whl"))) == 2


def test_a_dependency_without_a_floor_fails_the_metadata_check(workspace: Path, cli):
    # uv writes workspace dependencies into the wheel exactly as written;
    # without a floor the released acme.app would accept any acme.db.
    pyproject = workspace / "packages/app/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"acme.db>=2.1.0"', '"acme.db"'))
    result = cli("build", "--path", workspace, "--out-dir", workspace / "out")
    assert result.exit_code == 1
    assert (
        "acme_app-0.3.0-py3-none-any.whl: Requires-Dist 'acme-db' has no floor (expected >=2.1.0)"
        in result.output
    )
    # --no-check builds without complaint
    assert (
        cli(
            "build", "--path", workspace, "--out-dir", workspace / "out", "--no-check"
        ).exit_code
        == 0
    )


def test_a_stale_floor_fails_the_metadata_check(workspace: Path, tmp_path: Path):
    ws = load_workspace(workspace)
    built = build_packages(ws, ws.select(), tmp_path / "dist")
    check_wheels(ws, built)  # consistent: no error
    # acme.core moved on after acme.db was built against the old floor
    pyproject = workspace / "packages/core/pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('version = "1.0.0"', 'version = "1.1.0"')
    )
    moved = load_workspace(workspace)
    with pytest.raises(MetadataCheckError) as info:
        check_wheels(moved, [b for b in built if b.package.name != "acme.core"])
    assert info.value.problems == [
        "acme_db-2.1.0-py3-none-any.whl: Requires-Dist 'acme-core>=1.0.0,<2' has floor >=1.0.0 (expected >=1.1.0)",
        "acme_app-0.3.0-py3-none-any.whl: Requires-Dist 'acme-core>=1.0.0,<2' has floor >=1.0.0 (expected >=1.1.0)",
    ]


def test_wheel_name_and_version_are_checked(workspace: Path, tmp_path: Path):
    ws = load_workspace(workspace)
    [core] = build_packages(ws, [ws.get("acme.core")], tmp_path)
    forged = tmp_path / "forged.whl"
    with zipfile.ZipFile(core.wheel) as source, zipfile.ZipFile(forged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("METADATA"):
                data = data.replace(b"Version: 1.0.0", b"Version: 9.9.9")
            target.writestr(item, data)
    assert wheel_problems(ws, ws.get("acme.core"), forged) == [
        "forged.whl: Version is '9.9.9', expected 1.0.0"
    ]


def test_a_failing_build_names_the_command(workspace: Path, cli):
    pyproject = workspace / "packages/db/pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'module-name = "acme.db"', 'module-name = "acme.nothere"'
        )
    )
    result = cli("build", "--path", workspace, "--out-dir", workspace / "out")
    assert result.exit_code == 1
    assert "error: `uv build --no-sources --out-dir" in result.output
    assert "packages/db` failed with exit status" in result.output
    # it stopped at the first failure: acme.app (after acme.db) was not built
    assert not list((workspace / "out").glob("acme_app*"))
